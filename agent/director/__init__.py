"""The LLM Director: intent -> typed brief -> recipe -> validated graph -> run -> evaluate -> refine.

See graph.py for the loop, recipes.py for the templates and cli.py for `animation-studio direct`.
"""
