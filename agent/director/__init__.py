"""The LLM Director: intent -> typed plan of operations -> graph of the pack's nodes -> run -> verify -> decide.

intent.py parses the studio's language, ops.py is the operation language (schemas, compile, post-conditions),
core.py is the one core the CLI's LangGraph loop (graph.py, cli.py) and the ComfyUI node (node.py) share.
"""
