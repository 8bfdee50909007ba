"""Character speech: profile + emotion + language -> one backend (with fallback for "auto") -> audio + report."""
from __future__ import annotations

import time

from .. import bridge
from . import piper_tts, sovits, xtts
from .emotion import check_emotion, check_strength, prosody_for
from .profiles import VoiceProfile, load_profile, load_reference, resolve_reference
from .text import check_language, clean_text, split_sentences

BACKEND_CHOICES = ["auto", "piper", "gpt_sovits", "xtts"]
# What makes a backend merely unavailable here (auto moves on); anything else is a real error.
_UNAVAILABLE = (bridge.MissingModel, bridge.MissingDependency, sovits.ServerUnavailable)


class BackendSkipped(Exception):
    """The backend cannot serve this request (e.g. language); auto mode moves on."""


def _reference(profile: VoiceProfile, emotion: str, variant: int):
    ref = profile.reference_for(emotion, variant)
    if ref is None:
        raise bridge.MissingModel(f"Voice profile '{profile.character}' names no reference clip for emotion "
                                  f"'{emotion}' (nor neutral); add one under 'references' in "
                                  f"configs/voices/{profile.character}.yaml.")
    path = resolve_reference(ref, profile.character)
    load_reference(path)  # refuses a silent or too-short clip before any server time is spent
    return ref, path


def _run_gpt_sovits(profile, text, language, emotion, strength, variant, server):
    if language not in sovits.TEXT_LANG:
        raise BackendSkipped(f"GPT-SoVITS has no {language!r} text language")
    ref, path = _reference(profile, emotion if strength > 0 else "neutral", variant)
    url = sovits.server_url(server)
    settings = profile.gpt_sovits
    sovits.set_weights(url, settings.gpt_weights, settings.sovits_weights)
    samples, rate = sovits.tts(url, text, language, str(path), ref.text, ref.lang,
                               settings.text_split_method, settings.speed_factor)
    return samples, rate, {"server": url, "reference": ref.audio, "prompt_text": ref.text,
                           "gpt_weights": settings.gpt_weights, "sovits_weights": settings.sovits_weights}


def _run_xtts(profile, text, language, emotion, strength, variant, server):
    ref, path = _reference(profile, emotion if strength > 0 else "neutral", variant)
    if language == "en-it" and ref.lang == "en":
        note = "reference clip is plain English: the Italian accent comes only from a reference spoken with it"
    else:
        note = ""
    samples, rate = xtts.synthesize(text, language, path, profile.xtts.model, profile.xtts.temperature)
    return samples, rate, {"model": profile.xtts.model, "reference": ref.audio, **({"note": note} if note else {})}


def _run_piper(profile, text, language, emotion, strength, variant, server, progress=None):
    prosody = prosody_for(emotion, strength, profile.piper.emotions)
    samples, rate, details = piper_tts.synthesize(text, language, prosody, profile.piper.pitch_semitones,
                                                  profile.piper.rate, profile.piper.energy, progress,
                                                  profile.piper.formant_scale)
    return samples, rate, {"voice": profile.piper.voice, **details}


_RUNNERS = {"gpt_sovits": _run_gpt_sovits, "xtts": _run_xtts, "piper": _run_piper}


def speak(text: str, character: str, emotion: str = "neutral", strength: float = 0.7, language: str = "",
          backend: str = "auto", reference_variant: int = 0, server_url: str = ""):
    """-> (mono float32, sample_rate, report dict). Explicit backends raise; "auto" falls back in profile order."""
    text = clean_text(text)
    emotion, strength = check_emotion(emotion), check_strength(strength)
    profile = load_profile(character)
    language = check_language(language or profile.default_language, list(profile.languages),
                              f"'{profile.character}' voice profile")
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}.")
    order = list(profile.backends) if backend == "auto" else [backend]
    if backend == "auto" and "piper" not in order:
        order.append("piper")  # the offline default always closes the list
    skipped: dict[str, str] = {}
    started = time.perf_counter()
    progress = bridge.ProgressBar(len(split_sentences(text)) + 1, "speech")
    for name in order:
        try:
            if name == "piper":
                samples, rate, details = _run_piper(profile, text, language, emotion, strength, reference_variant,
                                                    server_url, progress)
            else:
                samples, rate, details = _RUNNERS[name](profile, text, language, emotion, strength,
                                                        reference_variant, server_url)
        except (_UNAVAILABLE + (BackendSkipped,)) as exc:
            if backend != "auto":
                if isinstance(exc, BackendSkipped):
                    raise ValueError(f"The {name} backend cannot speak this: {exc}.") from None
                raise
            skipped[name] = str(exc)
            continue
        progress.update_absolute(progress.total)
        seconds = time.perf_counter() - started
        duration = samples.size / rate
        report = {"character": profile.character, "text": text, "language": language, "emotion": emotion,
                  "strength": strength, "backend": name, "reference_variant": reference_variant,
                  "duration_s": round(duration, 3), "sample_rate": rate, "synthesis_s": round(seconds, 3),
                  "real_time_factor": round(seconds / max(duration, 1e-6), 4), "details": details,
                  "skipped_backends": skipped}
        return samples, rate, report
    raise RuntimeError("No voice backend could speak: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))


def character_references(character: str, emotion: str = "neutral") -> tuple[list, str]:
    """Reference recordings of a character for the similarity check -> ([(samples, rate)], description).

    Every clip named in the profile that exists is used (the speaker, not one emotion). With none on disk
    there is no reference: the list is empty and the description says so. A line is never compared with
    the same synthesiser's own rendering (Piper against Piper measured 0.92 and meant nothing).
    """
    profile = load_profile(character)
    clips, names = [], []
    for refs in profile.references.values():
        for ref in refs:
            try:
                path = resolve_reference(ref, profile.character)
            except bridge.MissingModel:
                continue
            clips.append(load_reference(path))
            names.append(ref.audio)
    if clips:
        return clips, "clips: " + ", ".join(names)
    return [], (f"no reference: no recording of {profile.character} on disk (the profile names "
                f"{sum(len(r) for r in profile.references.values())} clips under models/voices or the input folder)")
