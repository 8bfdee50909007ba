"""The studio's language -> a typed plan (ops.py), without an LLM.

One parser, in stages: refuse what must be refused (empty, nonsense, prompt injection, files outside the
studio's folders), lift quoted text out, turn number words into numbers ("quarter speed", "four times slower",
"one and a half seconds"), split the request into clauses ("slow it, then add a title and music"), and read
each clause's operations with their parameters from the words around them. Quoted text goes where its verb
sends it: said -> voice, captioned -> caption, titled -> title. "This clip / photo / song" must name an input
the person gave. Only what the words ask for is planned; a named macro (a parody) brings its own steps.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .ops import Op, expand_macro, make, validate_plan


class IntentError(ValueError):
    """An intent the Director will not or cannot plan; `reason` is a keyword, the message says what it can do."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


WHAT_I_CAN_DO = ("What I can do: edit a clip (trim, keep a scene, change speed or ramp it, freeze a frame, "
                 "interpolate, exaggerate expressions, captions, titles, music, stings, a character's spoken line, "
                 "join clips, GIF/WebM), work on a photo (exaggerate the expression, show the face landmarks), "
                 "make a character's voice line or picture, or a LoRA dataset from a clip.")

# ---------------------------------------------------------------- refusals
INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b.{0,30}\b(previous|prior|above|earlier|all|your|the)\b.{0,20}"
    r"\b(instructions?|rules?|prompts?|directions?)\b|\bsystem prompt\b|\byou are now\b|\bjailbreak\b|"
    r"\bdeveloper mode\b|\breveal\b.{0,30}\b(prompt|instructions|secrets?|keys?)\b|\bact as (an? )?(admin|root)\b|"
    r"\bexecute\b.{0,20}\b(shell|command|code)\b|\brm -rf\b|<\s*script|\bsudo\b", re.I)
PATHS = re.compile(
    r"(?:^|[\s\"'(=])(?:/(?:etc|root|home|usr|var|proc|sys|bin|tmp|dev|opt|boot|srv)\b|~/|[a-z]:\\)|\.\./|\.\.\\|"
    r"\b(passwd|shadow|id_rsa|\.ssh|\.env|\.bashrc|api[ _-]?keys?|credentials?|environment variables?|"
    r"system files?|config files?|private keys?|source code)\b|"
    r"\b(outside|out of)\b.{0,20}\b(input|output)\s+folders?\b|\b(list|show|read|print|cat|dump|open)\b.{0,20}"
    r"\b(files? in|directory|folder contents|the disk|file system|filesystem)\b", re.I)
WORD = re.compile(r"[a-zà-ÿ]+")
COMMON = set("""a an the this that these those it its is are be to of in on at for from with and or but then by as
make made add put give turn show keep cut slow fast speed clip video photo picture image song music voice line say
says said please can you i want me my we our some more less very just only also into over under after before
first last second third scene moment title caption text frame face sound audio track what how do does""".split())


def _nonsense(text: str) -> bool:
    words = WORD.findall(text.lower())
    if not words:
        return True
    wordlike = [w for w in words if re.search(r"[aeiouyà-ÿ]", w) and not re.search(r"[^aeiouy]{5,}", w)
                and not re.fullmatch(r"(asdf|qwer|zxcv|hjkl|sdfg|dfgh)\w*", w)]
    known = [w for w in words if w in COMMON]
    return len(wordlike) < max(1, len(words) // 2) or (not known and len(words) <= 3
                                                        and not any(w in VOCAB for w in words))


# ---------------------------------------------------------------- vocabulary
EMOTION_WORDS = {
    "happy": ("happy", "happily", "cheerful", "cheerfully", "joyful", "smiling", "glad", "joy", "happiness"),
    "sad": ("sad", "sadly", "crying", "tearful", "gloomy", "melancholic", "sadness"),
    "angry": ("angry", "angrily", "furious", "furiously", "mad", "annoyed", "anger", "fury"),
    "determined": ("determined", "resolute", "firmly", "determination", "resolve"),
    "excited": ("excited", "excitedly", "thrilled", "enthusiastic", "enthusiastically", "excitement", "enthusiasm"),
    "scared": ("scared", "afraid", "terrified", "fearful", "frightened", "fear"),
    "surprised": ("surprised", "shocked", "amazed", "astonished", "surprise", "astonishment"),
    "calm": ("calm", "calmly", "relaxed", "gently"),
    "whisper": ("whisper", "whispers", "whispering", "whispered"),
}
MOOD_WORDS = {
    "comedic": ("funny", "comic", "comedic", "comedy", "silly", "playful", "goofy", "cheerful", "happy", "upbeat"),
    "heroic": ("heroic", "epic", "triumphant", "adventurous", "uplifting", "grand"),
    "tense": ("tense", "scary", "suspense", "suspenseful", "creepy", "dark", "ominous", "spooky", "dramatic"),
    "sad": ("sad", "melancholic", "melancholy", "gloomy", "mournful"),
}
ACTIONS = ("running", "jumping", "swimming", "walking", "standing", "sitting", "dancing", "flying", "riding", "eating",
           "laughing", "waving", "diving", "reading", "sleeping", "cycling", "surfing", "climbing")
SAY = r"(?:says?|said|saying|speaks?|speaking|shouts?|shouting|yells?|yelling|whispers?|whispering|tells?|asks?|" \
      r"exclaims?|line|voice|voiced|speak|sings?|announces?)"
CAPTION = r"(?:caption(?:ed|s)?|subtitle[sd]?|text|writes?|written|write|reads?|reading|overlay|label|lower third|" \
          r"burn(?:ed)? in|words?)"
TITLE = r"(?:title[sd]?|titled|heading|headline|title card|called)"
VOCAB = set(w for ws in EMOTION_WORDS.values() for w in ws) | set(ACTIONS) | set(
    """parody spoof slow motion slowmo quarter half twice ramp freeze trim gif webm caption subtitle title music sting
    voice exaggerate landmarks dataset lora scene scenes interpolate fps segment concatenate join crossfade""".split())

NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30,
                "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100}
ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "sixth": 5, "seventh": 6, "eighth": 7}
NUM = r"(\d+(?:\.\d+)?)"
SEC = NUM + r"\s*(?:s|sec|secs|second|seconds)\b"


def _numbers(text: str) -> str:
    """Number words -> digits, keeping ordinals ('the second scene') and 'one' as a pronoun."""
    t = text
    t = re.sub(r"\bhalf (?:a|an) (second|sec)\b", r"0.5 \1s", t)
    t = re.sub(r"\b(a|one) (second|sec) and a half\b", "1.5 seconds", t)
    t = re.sub(r"\b(?:a )?couple of\b", "2", t)
    t = re.sub(r"\b(first|last|opening|initial) (second|sec)\b", r"\1 1 \2", t)  # "the first second" is 1 s
    t = re.sub(r"\b(?:for|of|in|after|hold(?: it)?|holds?) a (second)\b", lambda m: m.group(0).replace("a second", "1 second"), t)
    for word, value in sorted(NUMBER_WORDS.items(), key=lambda kv: -len(kv[0])):
        if word == "one":
            t = re.sub(r"\bone(?=\s*(?:and a half|point|seconds?\b|secs?\b|s\b|x\b|times\b|fps\b|%|percent\b))", "1", t)
            continue
        t = re.sub(rf"\b{word}\b", str(value), t)
    t = re.sub(r"\b(\d+) (\d)\b", lambda m: str(int(m.group(1)) + int(m.group(2))) if int(m.group(1)) % 10 == 0
               and int(m.group(1)) >= 20 else m.group(0), t)  # twenty five -> 25
    t = re.sub(r"\b(\d+) and a half\b", lambda m: f"{int(m.group(1)) + 0.5:g}", t)
    t = re.sub(r"\b(\d+) point (\d+)\b", r"\1.\2", t)
    t = re.sub(r"(\d),(\d)", r"\1.\2", t)  # 1,5 s (European decimals)
    t = re.sub(r"\btwice\b", "2 times", t)
    t = re.sub(r"\bthrice\b", "3 times", t)
    return t


# ---------------------------------------------------------------- the request, prepared
QUOTE = re.compile(r"[\"“”«»]([^\"“”«»]{1,300})[\"“”«»]|(?:^|(?<=[\s:(]))[‘']([^'’]{1,300}?)[’'](?=[\s.,!?;:)]|$)")


@dataclass
class Request:
    raw: str  # as the person wrote it
    text: str  # lower-case, numbers as digits, quotes as «0», «1»
    quotes: list[str]
    inputs: dict
    character: str
    names: list[str]


def _prepare(intent: str, inputs: dict, character: str) -> Request:
    quotes: list[str] = []

    def lift(m):
        quotes.append((m.group(1) or m.group(2)).strip())
        return f" «{len(quotes) - 1}» "

    text = QUOTE.sub(lift, intent.strip())
    text = _numbers(text.lower())
    text = re.sub(r"\s+", " ", text).strip()
    from ...configs.characters import list_characters

    return Request(intent, text, quotes, inputs or {}, (character or "").lower(), list_characters())


def _original(req: Request, phrase: str) -> str:
    """An unquoted phrase as the person cased it ("caption it Hello World" keeps "Hello World")."""
    m = re.search(r"\s+".join(re.escape(w) for w in phrase.split()), req.raw, re.I)
    return m.group(0) if m else phrase


CLAUSE_SPLIT = re.compile(r"\s*(?:;|\.\s|,?\s*\b(?:and then|then|after that|afterwards|finally|next|also)\b,?|"
                          r",\s*(?:and\s+)?(?=(?:add|put|make|slow|speed|freeze|trim|cut|keep|exaggerate|export|save|"
                          r"turn|ramp|caption|title|burn|overlay|join|interpolate|show|draw|mix|play|have|let)\b)|"
                          r"\band\s+(?=(?:add|put|make|slow|speed|freeze|trim|cut|keep|exaggerate|export|save|turn|"
                          r"ramp|burn|overlay|join|interpolate|show|draw|mix|play|have|let)\b))\s*")


def clauses(text: str) -> list[str]:
    return [c.strip(" ,.") for c in CLAUSE_SPLIT.split(text) if c and c.strip(" ,.")]


def _has(pattern: str, text: str) -> re.Match | None:
    return re.search(pattern, text)


def _first(pattern: str, text: str, cast=float):
    m = re.search(pattern, text)
    if not m:
        return None
    value = next(g for g in m.groups() if g is not None)
    return cast(value)


def _character(req: Request, clause: str) -> str | None:
    """The character named first in the clause ("Luca tells Alberto ..." is Luca)."""
    hits = [(m.start(), name) for name in req.names if (m := re.search(rf"\b{re.escape(name)}\b", clause))]
    return min(hits)[1] if hits else None


def _any_character(req: Request) -> str | None:
    return _character(req, req.text) or (req.character or None)


def _emotion(text: str) -> str | None:
    found = []
    for emotion, words in EMOTION_WORDS.items():
        for w in words:
            m = re.search(rf"\b{w}\b", text)
            if m:
                found.append((m.start(), emotion))
    return min(found)[1] if found else None


def _mood(text: str) -> str | None:
    found = []
    for mood, words in MOOD_WORDS.items():
        for w in words:
            m = re.search(rf"\b{w}\b", text)
            if m:
                found.append((m.start(), mood))
    return min(found)[1] if found else None


def _from_to(text: str) -> tuple[float, float] | None:
    m = re.search(r"\b(?:from|between)\s+" + NUM + r"\s*(?:s|sec|secs|seconds?)?\s+(?:to|and|until|till|-)\s+" + SEC,
                  text) or re.search(NUM + r"\s*(?:s|sec|secs|seconds?)?\s*(?:-|–|to)\s*" + SEC, text)
    return (float(m.group(1)), float(m.group(2))) if m else None


# ---------------------------------------------------------------- speeds
def _speed(text: str) -> float | None:
    """A playback speed stated in the words (0.25 = quarter speed), or None."""
    rules = [
        (r"\b" + NUM + r"\s*(?:%|percent)", lambda v: v / 100),
        (r"\b(?:a |one |1 )?quarter(?:[- ]speed| of (?:the |its )?(?:original |normal |usual )?(?:speed|pace)| as fast)",
         lambda v: 0.25),
        (r"\b(?:a |one |1 )?third(?:[- ]speed| of (?:the |its )?(?:original |normal |usual )?(?:speed|pace)| as fast)",
         lambda v: round(1 / 3, 3)),
        (r"\bhalf(?:[- ]speed| the speed| as fast| of (?:the|its) speed)|\bat half\b", lambda v: 0.5),
        (r"\b(?:three[- ]quarters?|3 quarters?)(?:[- ]speed| of (?:the|its) speed)", lambda v: 0.75),
        (r"\b" + NUM + r"\s*(?:x|times)\s*(?:slower|as slow|longer)", lambda v: round(1 / v, 3)),
        (r"\bslow(?:ed)?(?: it| this(?: clip)?| the clip)? down (?:by )?" + NUM + r"\s*(?:x|times)", lambda v: round(1 / v, 3)),
        (r"\b" + NUM + r"\s*(?:x|times)\s*(?:faster|as fast|quicker)", lambda v: v),
        (r"\bdouble(?:[- ]speed| the speed)", lambda v: 2.0),
        (r"\bspeed(?: it)? up (?:by )?" + NUM + r"\s*(?:x|times)?", lambda v: v),
        (r"(?:\bat|\bto)\s+" + NUM + r"\s*x\b", lambda v: v),
        (r"\b" + NUM + r"\s*x\s*speed", lambda v: v),
        (r"\bspeed (?:of |to )?" + NUM + r"\b", lambda v: v),
    ]
    for pattern, to_speed in rules:
        m = re.search(pattern, text)
        if m:
            value = next((float(g) for g in m.groups() if g is not None), 0.0)
            if to_speed(value or 1.0) > 0:
                return to_speed(value or 1.0)
    return None


SLOW_WORDS = r"\b(?:slow(?:[- ]?mo(?:tion)?|ed|er)?|slowmo|speed(?: it)? up|faster|quicker|speed)\b"
# A length asked for: "make it 3 seconds long", "make it last 10 s", "stretch it to 8 seconds", "fit it into 2 s".
TARGET_LENGTH = (r"\b" + NUM + r"[\s-]*(?:s|sec|secs|second|seconds)[\s-]+long\b"
                 r"|\b(?:make|have|let|get)\s+(?:it|this|the clip|this clip|the video|this video)\s+last\s+(?:for\s+)?"
                 + SEC + r"|\bso (?:that )?it lasts?\s+(?:for\s+)?" + SEC + r"|\bto last\s+(?:for\s+)?" + SEC
                 + r"|\b(?:stretch|slow|speed|squeeze|compress|fit)\w*\b(?:\s+(?:it|this|the|clip|video|down|up|out)){0,3}"
                 r"\s+(?:to|into|in|over)\s+(?:fill\s+|last\s+)?" + SEC)
# "the last 3 seconds" (inside a TARGET_LENGTH match, "make it last 3 seconds", it is a length).
LAST_SECONDS = r"\b(?:last|final|closing|ending)\s+" + SEC
CUT_WORDS = r"\b(?:cut|trim|shorten|crop|chop)\w*\b"


# ---------------------------------------------------------------- one clause -> operations (with positions)
def _clause_ops(c: str, req: Request, notes: list[str]) -> list[tuple[int, Op]]:
    found: list[tuple[int, Op]] = []

    def add(m: re.Match | int, name: str, **params):
        pos = m if isinstance(m, int) else m.start()
        found.append((pos, make(name, **params)))

    ramp = _has(r"\b(?:speed[- ])?ramp(?:s|ed|ing)?\b", c)
    freeze = _has(r"\bfreez(?:e|es|ing)\b|\bhold (?:the |on the )?(?:frame|picture|shot)\b|\bfreeze[- ]frame\b", c)
    caption_like = _has(r"\b" + CAPTION + r"\b|\b" + TITLE + r"\b", c)
    window = _from_to(c)
    target = None if ramp or freeze else _has(TARGET_LENGTH, c)
    target_s = float(next(g for g in target.groups() if g is not None)) if target else None
    cut = _has(CUT_WORDS, c)

    # -- timing
    if ramp:
        params = {}
        speed = _speed(c)
        if speed is not None:
            params["speed"] = speed
        if window:
            params["start"], params["end"] = window
        if _has(r"\b(?:peak|most expressive|biggest expression|climax)\b", c):
            params["on"] = "peak"
        if _has(r"\blinear(?:ly)?\b", c):
            params["curve"] = "linear"
        add(ramp, "speed_ramp", **params)
    elif target and not cut:  # a length without cutting words is a retime, as an editor's speed/duration is
        add(target, "retime", seconds=target_s)
        notes.append(f"'{target.group(0)}': the whole clip retimed to last {target_s:g} s (say 'cut' to trim)")
    elif not target:
        speed = _speed(c) if _has(SLOW_WORDS + r"|%|percent|quarter|half|third|\bx\b|times|speed", c) else None
        slow = _has(SLOW_WORDS, c)
        if speed is not None and not freeze:
            add(slow or 0, "retime", speed=speed)
        elif slow and not freeze and not _has(r"\bspeed ramp\b", c):
            if _has(r"\b(?:speed(?: it)? up|faster|quicker)\b", c):
                add(slow, "retime", speed=2.0)
                notes.append("no speed given for 'faster': double speed")
            elif _has(r"\bslow", c):
                add(slow, "retime", speed=0.5)
                notes.append("no speed given for 'slow': half speed")

    if (m := _has(r"\b(?:skip|drop|cut|remove)\s+(?:the\s+)?first\s+" + SEC, c)):
        add(m, "trim", start=float(m.group(1)), end=0.0)
    elif (m := _has(LAST_SECONDS, c)) and not caption_like and not (
            target and target.start() <= m.start() < target.end()):
        add(m, "trim", last=float(m.group(1)))
    elif target and cut:
        add(target, "trim", start=0.0, end=target_s)
    elif (m := _has(r"\b(?:first|opening|initial|start(?:ing)?)\s+" + SEC, c)) and not caption_like:
        add(m, "trim", start=0.0, end=float(m.group(1)))
    elif window and not (ramp or freeze or caption_like) and (
            m := _has(r"\b(?:keep|trim|cut|only|clip|shorten|just|use|take)\b", c)):
        add(m, "trim", start=window[0], end=window[1])
    elif (m := _has(r"\b(?:cut|trim|stop|end|shorten)\b.{0,20}\b(?:at|to|after)\s+" + SEC, c)) and not caption_like:
        add(m, "trim", start=0.0, end=float(m.group(1)))
    elif (m := _has(r"\b(?:from|start(?:ing)? at)\s+" + SEC + r"\s+(?:on|onwards|to the end)", c)):
        add(m, "trim", start=float(m.group(1)), end=0.0)

    # -- scenes
    pick = None
    if (m := _has(r"\b(?:most|more) (?:active|action|movement|motion|dynamic)|\bbusiest\b|\bliveliest\b", c)):
        pick = (m, {"by": "most_active"})
    elif (m := _has(r"\bmost expressive\b|\bbiggest (?:expression|reaction)\b", c)) and not ramp:
        pick = (m, {"by": "expressive"})
    elif (m := _has(r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth)\s+(?:scene|shot)\b", c)):
        pick = (m, {"by": "index", "index": ORDINALS[m.group(1)]})
    elif (m := _has(r"\b(?:scene|shot)\s+(?:number\s+)?(\d+)\b", c)):
        pick = (m, {"by": "index", "index": max(0, int(m.group(1)) - 1)})
    if pick:
        add(pick[0], "pick_scene", **pick[1])
    elif (m := _has(r"\b(?:detect|find|split|list|mark|show)\b.{0,25}\b(?:scenes?|cuts|shots|scene changes)\b", c)):
        params = {"detector": "adaptive"} if _has(r"\badaptive\b", c) else {}
        if (t := _first(r"threshold (?:of )?" + NUM, c)) is not None:
            params["threshold"] = t
        add(m, "scenes", **params)

    # -- freeze
    if freeze:
        params = {}
        at = _first(r"\b(?:at|on)\s+" + SEC, c)
        if at is None and window:
            at = window[0]
        if at is not None:
            params["at"] = at
        hold = _first(r"\bfor\s+" + SEC, c)
        if hold is not None:
            params["hold"] = hold
        if _has(r"\bpunch(?:es|ing)?[- ]in\b|\bzoom", c):
            zoom = _first(r"\bzoom(?:s|ing)?(?: in)?(?: to| by)?\s+" + NUM + r"\s*x?|\b" + NUM + r"\s*x\s*zoom", c)
            params["zoom"] = zoom if zoom and zoom >= 1 else 1.3
        add(freeze, "freeze", **params)

    # -- frame rate
    if (m := _has(r"\binterpolat\w*|\b" + NUM + r"\s*fps\b|\bframes per second\b|\bsmoother motion\b", c)):
        fps = _first(NUM + r"\s*(?:fps|frames per second)", c)
        add(m, "interpolate", **({"fps": fps} if fps else {}))

    # -- faces
    if (m := _has(r"\bexaggerat\w*|\bover[- ]the[- ]top\b|\bcartoonish\b|\bham it up\b|\bpush the expression", c)):
        params = {}
        factor = _first(r"\b(?:by|to|factor(?: of)?)\s+" + NUM + r"\b|\b" + NUM + r"\s*(?:x|times)\b", c)
        if factor is not None and 1 <= factor <= 5:
            params["factor"] = factor
        elif _has(r"\b(?:double|doubled)\b", c):
            params["factor"] = 2.0
        elif _has(r"\btriple", c):
            params["factor"] = 3.0
        elif _has(r"\b(?:a (?:little|bit)|slightly|subtly|gently)\b", c):
            params["factor"] = 1.5
        feats = [f for f, w in (("mouth", r"mouth|lips|smile|grin"), ("eyes", r"eyes?"),
                                ("brows", r"(?:eye)?brows?")) if _has(rf"\b(?:{w})\b", c)]
        if feats:
            params["features"] = feats
        add(m, "exaggerate", **params)
    if (m := _has(r"\blandmarks?\b|\bface mesh\b|\b(?:face|facial) (?:points|keypoints|dots)\b", c)):
        add(m, "landmarks_preview")

    # -- words on screen and spoken, decided by the verb
    for qm in re.finditer(r"«(\d+)»", c):
        line = req.quotes[int(qm.group(1))]
        before = c[:qm.start()]
        verb = _verb_for(before, c) or ("voice" if _character(req, c) else "caption")
        if verb == "title":
            seconds = _first(r"\b" + NUM + r"[- ]?(?:s|sec|second)s?[- ](?:long )?title|\btitle\b.{0,30}\bfor\s+" + SEC, c)
            add(qm, "title", text=line, **({"seconds": seconds} if seconds else {}))
        elif verb == "caption":
            params = {"text": line}
            pos = _first(r"\b(top|bottom|center|centre|middle)\b", c, str)
            if pos:
                params["position"] = {"centre": "center", "middle": "center"}.get(pos, pos)
            if _has(r"\b(?:big|large|huge|giant|bold)\b", c):
                params["size"] = 2.0
            elif _has(r"\b(?:small|tiny|little)\b", c):
                params["size"] = 0.75
            if window:
                params["start"], params["end"] = window
            elif (n := _first(r"\b(?:for|during) the first\s+" + SEC, c)) is not None:
                params["start"], params["end"] = 0.0, n
            add(qm, "caption", **params)
        else:
            add(qm, "voice", **_voice_params(c, req, line))
    if not re.search(r"«\d+»", c) and (m := _has(
            r"\b(?:caption|subtitle)(?:ed)?(?: it| the clip| this clip)?(?: with| saying| that says)?:?\s+"
            r"(?!a\b|an\b|the\b|it\b|this\b|that\b|at\b|on\b|to\b)(\w[^,;]*?)"
            r"(?=\s+(?:at the (?:top|bottom|center|centre|middle)|in the (?:middle|center|centre)|from \d|for the first)|$)",
            c)):
        params = {"text": _original(req, m.group(1).strip(" ."))}
        pos = _first(r"\b(top|bottom|center|centre|middle)\b", c, str)
        if pos:
            params["position"] = {"centre": "center", "middle": "center"}.get(pos, pos)
        if window:
            params["start"], params["end"] = window
        add(m, "caption", **params)
    elif not re.search(r"«\d+»", c) and _has(r"\b(?:add|put|burn)\b.{0,12}\b(?:caption|subtitle)s?\b", c):
        raise IntentError("needs_text", "which words should the caption say? Put them in quotes, e.g. "
                                        "add a caption 'Meanwhile...'")
    if not re.search(r"«\d+»", c) and (m := _has(r"\b(" + SAY + r")\b:?\s+(?!a |an |the |it |this |that )(\w[^,;]*)", c)):
        speaker = _character(req, c[:m.start()]) or _character(req, c)
        if speaker and not _has(r"\b(?:title|caption|subtitle)\b", c):
            add(m, "voice", **_voice_params(c, req, _original(req, m.group(2).strip(" .")), speaker))

    # -- sound
    sting = _has(r"\b(?:music(?:al)? )?sting(?:er)?s?\b|\bdun[- ]dun\b|\bsad trombone\b|\bwah[- ]wah\b|"
                 r"\bdramatic (?:hit|chord|sound)\b", c)
    if sting:
        params = {}
        style = ("sad_trombone" if _has(r"\bsad trombone\b|\bwah[- ]wah\b|\bsad\b", c) else
                 "suspense" if _has(r"\bsuspense\w*|\btense\b", c) else
                 "triumph" if _has(r"\btriumph\w*|\bvictory\b|\bfanfare\b|\bheroic\b", c) else None)
        if style:
            params["style"] = style
        at = _first(r"\b(?:at|after)\s+" + SEC, c[sting.start():])
        if at is not None and not freeze:
            params["at"] = at
        add(sting, "sting", **params)
    song = _has(r"\b(?:this|the|my|that)\s+(?:song|track|tune|audio|recording|music)\b", c)
    if song and req.inputs.get("audio") and not sting:
        add(song, "mux")
    else:
        m = _has(r"\b(?:music|soundtrack|score|background track|tune)\b", c.replace("music sting", "sting")
                 .replace("musical sting", "sting"))
        if m and not (sting and _has(r"\bmusic(?:al)? sting", c) and not _has(r"\bmusic\b(?! ?sting)", c)):
            params = {}
            mood = _mood(c)
            if mood:
                params["mood"] = mood
            if _has(r"\b(?:quiet|soft|low|subtle|faint|gentle)\b", c):
                params["level_db"] = -18.0
            elif _has(r"\b(?:loud|big|booming)\b", c):
                params["level_db"] = -6.0
            if (db := _first(r"(-?\d+(?:\.\d+)?)\s*db\b", c)) is not None:
                params["level_db"] = db if db <= 0 else -db
            add(m, "music", **params)

    # -- several clips, cut-outs, datasets, pictures
    if (m := _has(r"\b(?:join|concatenate|combine|stitch|merge|splice)\b|\bone after the other\b|\bback to back\b", c)):
        params = {}
        if _has(r"\bcross[- ]?fade|\bdissolve", c):
            params["transition"] = "crossfade"
        elif _has(r"\bfade (?:to|through) black\b|\bfade\b", c):
            params["transition"] = "fade_black"
        elif _has(r"\bwipe\b", c):
            params["transition"] = "wipe"
        add(m, "concat", **params)
    if (m := _has(r"\b(?:cut out|segment|isolate|mask out|remove the background(?: from| of| behind)?)\s+"
                  r"(?:the\s+)?(\w+)?", c)) and not _has(r"\bdataset\b", c):
        subject = m.group(1) if m.group(1) and m.group(1) not in ("this", "it", "clip", "photo", "video") else None
        add(m, "segment", **({"subject": subject} if subject else {}))
    if (m := _has(r"\b(?:lora )?(?:dataset|training (?:set|data|images)|lora)\b", c)):
        subject = _character(req, c) or req.character
        params = {"subject": subject} if subject else {}
        if (n := _first(NUM + r"\s*frames per scene", c, lambda v: int(float(v)))) is not None:
            params["frames_per_scene"] = n
        add(m, "dataset", **params)
        if not subject:
            notes.append("no character named for the dataset: luca")
    if (m := _has(r"\b(?:picture|image|portrait|render|drawing|draw|illustration|poster|character sheet|paint)\b|"
                  r"\b(?:a|new) (?:photo|still)\b", c)) and not _has(r"\b(?:this|that|the|my) (?:photo|picture|image)\b", c):
        add(m, "image", **_image_params(c, req))

    # -- format
    if (m := _has(r"\b(gif|webm|mp4|png|wav)\b", c)):
        add(10**6, "export", format=m.group(1))
    return found


def _verb_for(before: str, clause: str) -> str:
    """title / caption / voice: the verb that governs a quoted text (title > caption > said), "" when none does."""
    for text in (before, clause):
        hits = []
        for kind, pattern in (("title", TITLE), ("caption", CAPTION), ("voice", SAY)):
            for m in re.finditer(r"\b" + pattern + r"\b", text):
                hits.append((kind, m.end()))
        if hits:
            kinds = {k for k, _ in hits}
            if "title" in kinds:
                return "title"
            if "caption" in kinds:
                return "caption"
            return "voice"
    return ""


def _voice_params(c: str, req: Request, line: str, speaker: str | None = None) -> dict:
    params: dict = {"line": line[:300]}
    speaker = speaker or _character(req, c) or _any_character(req)
    if speaker:
        params["character"] = speaker
    emotion = _emotion(c)
    if emotion:
        params["emotion"] = emotion
    if _has(r"\b(?:italian accent|with an? italian accent)\b", c):
        params["language"] = "en-it"
    elif _has(r"\bin italian\b", c):
        params["language"] = "it"
    elif _has(r"\bin english\b", c):
        params["language"] = "en"
    return params


def _image_params(c: str, req: Request) -> dict:
    params: dict = {}
    who = _character(req, c) or _any_character(req)
    if who:
        params["character"] = who
    action = next((a for a in ACTIONS if re.search(rf"\b{a}\b", c)), None)
    if action:
        params["action"] = action
    emotion = _emotion(c)
    if emotion:
        params["expression"] = emotion
    m = re.search(r"\b(?:at|on|in|by|near)\s+(?:the\s+|a\s+)?((?!italian\b|english\b|3d\b|style\b)[a-z][a-z '-]{2,60}?)"
                  r"(?=,|\.|$| with\b| and\b| using\b)", c)
    if m:
        params["background"] = m.group(1).strip()
    controls = [k for k, w in (("pose", r"pose"), ("depth", r"depth"), ("canny", r"canny|edges?|outline"))
                if re.search(rf"\b(?:{w})\b", c)]
    if controls:
        params["controls"] = controls
    return params


# ---------------------------------------------------------------- the whole request
BINDINGS = {"video": r"\b(?:this|the|my|that) (?:clip|video|footage|movie|scene|shot)\b",
            "image": r"\b(?:this|the|my|that) (?:photo|picture|image|portrait|still|selfie)\b",
            "audio": r"\b(?:this|the|my|that) (?:song|track|tune|recording|audio)\b"}
WORDS_OF_KIND = {"video": "clip", "image": "photo", "audio": "song/audio file"}


def parse_intent(intent: str, inputs: dict | None = None, character: str = "") -> tuple[list[Op], list[str]]:
    """The plan for an intent (ops with every parameter) and notes on what was decided; IntentError if none."""
    inputs = {k: v for k, v in (inputs or {}).items() if v}
    raw = (intent or "").strip()
    if not raw:
        raise IntentError("empty", "the intent is empty: say what to make. " + WHAT_I_CAN_DO)
    if len(raw) > 2000:
        raise IntentError("too_long", "the intent is longer than 2000 characters; say it in a few sentences")
    if INJECTION.search(raw):
        raise IntentError("injection", "the intent contains instructions to the system, not a request for media; "
                                       "nothing was run. " + WHAT_I_CAN_DO)
    if PATHS.search(raw):
        raise IntentError("path", "the Director only reads the files you give it (--input, in the input folder) "
                                  "and writes to the output folder; it does not read, list or show other files.")
    req = _prepare(raw, inputs, character)
    notes: list[str] = []
    for kind, pattern in BINDINGS.items():
        if re.search(pattern, req.text) and not inputs.get(kind) and not (
                kind == "video" and re.search(r"\bscene\b", req.text) and inputs.get("video")):
            if kind == "video" and re.search(r"\b(?:this|that|the) scene\b", req.text):
                continue
            raise IntentError("missing_input", f"you said '{re.search(pattern, req.text).group(0)}' but gave no "
                                               f"{WORDS_OF_KIND[kind]}: pass it with --input. " + WHAT_I_CAN_DO)

    parody = re.search(r"\b(?:parody|parodies|spoof|parodize|parodise)\b", req.text)
    ops: list[Op] = []
    for c in clauses(req.text):
        ops += [op for _, op in sorted(_clause_ops(c, req, notes), key=lambda t: t[0])]
    if parody:
        ops = _parody(ops, notes)
    elif not ops and _any_character(req) and not inputs:
        # "Luca running, excited, sunny Italian seaside": a character with no medium is a picture of them.
        ops = [make("image", **_image_params(req.text, req))]
        notes.append("a character with no medium named: a picture of them")
    ops = _tidy(ops)
    if not ops and _nonsense(QUOTE.sub(" ", raw)):
        raise IntentError("nonsense", f"I cannot read {raw[:60]!r} as a request. " + WHAT_I_CAN_DO)
    if not ops:
        raise IntentError("out_of_scope", f"I found nothing to make in {raw[:80]!r}. " + WHAT_I_CAN_DO)
    errors = validate_plan(ops, inputs)
    if errors:
        raise IntentError("missing_input" if any("needs" in e for e in errors) else "invalid",
                          "cannot plan this: " + "; ".join(errors))
    return ops, notes


def _parody(ops: list[Op], notes: list[str]) -> list[Op]:
    """The parody macro, with what the words said about its steps; other asked-for steps go before its export."""
    macro = expand_macro("parody")
    extra = []
    for op in ops:
        if op.op == "retime":
            i = next(i for i, m in enumerate(macro) if m.op == "speed_ramp")
            macro[i] = make("speed_ramp", **{**macro[i].params, "speed": op.params["speed"]})
        elif op.op in ("exaggerate", "sting", "export"):
            i = next(i for i, m in enumerate(macro) if m.op == op.op)
            macro[i] = op
        elif op.op not in ("scenes", "pick_scene", "speed_ramp"):
            extra.append(op)
    notes.append("parody: " + " -> ".join(o.op for o in macro))
    return macro[:-1] + extra + macro[-1:]


def _tidy(ops: list[Op]) -> list[Op]:
    """Drop exact repeats and keep one export, last."""
    out: list[Op] = []
    for op in ops:
        if op.op != "export" and op not in out:
            out.append(op)
    exports = [op for op in ops if op.op == "export"]
    return out + exports[-1:]
