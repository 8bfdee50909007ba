"""Hover help for every node input, as ComfyUI's own nodes have it (`"tooltip"` in each input's options).

A node that writes its own tooltip keeps it. The others get one from this table: first the node's own
entry (BY_NODE, keyed without the "AnimStudio_" prefix), then the entry for the input's name (BY_NAME),
which says what an input of that name means across the pack. `add_tooltips()` is applied to every class
the pack publishes (nodes/__init__.py for the families, agent/catalog.py for the agent's nodes);
tests/test_pack.py checks that no input is left without one.
"""
from __future__ import annotations

import copy

PREFIX = "AnimStudio_"

BY_NAME: dict[str, str] = {
    "video": "The video to work on (a Studio video from Load Video or another video node).",
    "audio": "The sound to use (from Load Audio, a voice node or an audio node).",
    "image": "The image to use (the first of a batch where one is needed).",
    "images": "The image batch to use (frames in order).",
    "text": "The text to use.",
    "filename_prefix": "Name of the saved file inside ComfyUI's output folder; may start with subfolders "
                       "(sub/name). A number is added and an existing file is never overwritten.",
    "format": "File format of the saved result.",
    "landmarks": "Face landmarks of the same frames (from Face Landmarks / Face Landmarks Video).",
    "fps": "Frames per second.",
    "start": "Start time in seconds.",
    "end": "End time in seconds (0 = the end of the clip).",
    "mode": "How in-between frames are made: blend (cross-fade, fastest), optical_flow (OpenCV motion), "
            "learned (a frame interpolation model from models/).",
    "audio_mode": "What happens to the clip's sound: stretch it with the picture (pitch kept), mute it, "
                  "or replace it with the audio input.",
    "model_name": "Model file or folder in the pack's models/ folder (empty = the default or none).",
    "mask": "Mask (white = keep/affect, black = ignore).",
    "masks": "One mask per image (white = the subject).",
    "seed": "Random seed: the same seed gives the same result.",
    "strength": "How strongly the effect is applied (0 = none, 1 = full).",
    "character": "Character from configs/characters/ (LoRA, trigger words, voice, reference images).",
    "language": "Spoken language of the text.",
    "sample_rate": "Samples per second of the generated sound.",
    "scenes": "Scene list from Detect Scenes (start and end of each shot).",
    "sam2_model": "A SAM2 model from Load SAM2 Model.",
    "mask_hint": "Rough mask of the subject to segment (its box and centre become SAM2's prompts).",
    "max_faces": "Most faces to track in each frame.",
    "neutral_image": "A calm frame of the same face, the neutral pose the expression is measured from "
                     "(default: the clip's calmest frames).",
    "emotion": "Emotion of the delivery.",
    "reference": "Reference for likeness (an image reference from IP-Adapter/InstantID, or a voice clip).",
    "method": "Which method to use; auto picks the best one installed.",
    "width": "Width in pixels.",
    "height": "Height in pixels.",
    "model": "The SDXL model to use (from the checkpoint loader or a LoRA node).",
    "controls": "ControlNets stacked by Control Net Stack (each with its own image and strength).",
    "weight": "LoRA strength (1 = as trained; negative weights push away from it).",
    "threshold": "Decision threshold (see the node's description for its unit).",
    "start_frame": "First frame to read (0 = the first).",
    "stride": "Keep one frame in every N (1 = every frame).",
    "max_size": "Resize so the longer side is at most this many pixels (0 = full size).",
    "action": "What the character is doing, in plain words.",
    "expression": "The character's facial expression, in plain words.",
    "background": "Where the scene takes place, in plain words.",
    "scale": "Scale factor.",
}

BY_NODE: dict[str, dict[str, str]] = {
    "Text": {"text": "The text this node outputs."},
    "JoinText": {"a": "First text.", "b": "Second text, appended after the separator.",
                 "separator": "Put between the two texts."},
    "Number": {"value": "The number this node outputs."},
    "SaveText": {"text": "Text (or JSON) to save as a .txt file."},
    "LoadImage": {"image": "Image file in ComfyUI's input folder."},
    "SaveImage": {"images": "Images to save as PNG files (one per image of the batch)."},
    "SolidImage": {"top_color": "Colour at the top, as #rrggbb.", "bottom_color": "Colour at the bottom, as #rrggbb."},
    "ShowJSON": {"text": "JSON (or text) to show on the node, pretty-printed."},
    "LoadVideo": {"video": "Video file in ComfyUI's input folder (mp4, mov, webm, mkv, gif...)."},
    "SaveVideo": {"video": "The video to encode and save.",
                  "with_audio": "Keep the video's sound (or the audio input) in the file.",
                  "audio": "Sound to put in the file instead of the video's own."},
    "VideoInfo": {"video": "The video to describe (size, frame rate, duration, sound)."},
    "VideoToImages": {"video": "The video to decode into an IMAGE batch.",
                      "max_frames": "Most frames to decode (keeps memory bounded)."},
    "ImagesToVideo": {"images": "Frames of the video, in order.", "fps": "Frames per second of the video.",
                      "audio": "Sound to attach to the video."},
    "VideoToComfyVideo": {"video": "Studio video to hand to ComfyUI's own VIDEO nodes."},
    "ComfyVideoToVideo": {"comfy_video": "A VIDEO from ComfyUI's own video nodes, to use with the pack's nodes."},
    "TrimVideo": {"video": "The video to cut."},
    "DetectScenes": {"video": "The video to split into shots.",
                     "detector": "content: cuts where the picture changes; adaptive: relative to the recent "
                                 "change (fewer false cuts in fast action).",
                     "min_scene_len": "Shortest shot in seconds; shorter ones are merged."},
    "PickScene": {"video": "The video the scenes belong to.", "scenes": "Scene list from Detect Scenes.",
                  "by": "most_active: the shot with the most motion; index: by number; score: the highest of "
                        "the scores input.",
                  "index": "Shot number for by=index (negative counts from the end).",
                  "scores": "One score per shot (JSON list) for by=score."},
    "SlowMotion": {"video": "The video to slow down (or speed up).",
                   "factor": "Playback speed: 0.25 = quarter speed (4x longer), 2 = twice as fast.",
                   "audio": "Sound to use with audio_mode=replace."},
    "SpeedRamp": {"video": "The video to ramp.", "start": "Where the changed speed begins, in seconds.",
                  "end": "Where it ends, in seconds.",
                  "speed": "Speed inside the ramp: 0.25 = quarter speed.",
                  "ramp": "Seconds spent easing into and out of the new speed.",
                  "curve": "Shape of the speed change.", "audio": "Sound to use with audio_mode=replace."},
    "FrameInterpolation": {"video": "The video to make smoother.", "target_fps": "Frame rate of the result."},
    "FreezeFrame": {"video": "The video to freeze.", "at": "Time of the frozen frame, in seconds.",
                    "hold": "How long the frame is held, in seconds.",
                    "zoom": "Push-in during the hold (1 = none).", "zoom_time": "Seconds to reach the zoom.",
                    "center_x": "Zoom centre across (0 = left, 1 = right).",
                    "center_y": "Zoom centre down (0 = top, 1 = bottom).",
                    "audio": "Sound to use with audio_mode=replace."},
    "MuxAudio": {"video": "The video to put the sound on.", "audio": "Sound that replaces the video's own."},
    "ExtractAudio": {"video": "The video whose sound track is taken out."},
    "ConcatVideos": {"video_a": "First video.", "video_b": "Second video, played after the first.",
                     "transition": "How one video turns into the next.",
                     "duration": "Length of the transition in seconds."},
    "BurnCaption": {"video": "The video to caption.", "text": "Caption text.",
                    "position": "Where the caption sits.", "color": "Text colour, as #rrggbb.",
                    "box": "Draw a dark box behind the text so it stays readable."},
    "PictureInPicture": {"video": "The main video.", "inset": "The small video shown over it.",
                         "scale": "Size of the inset relative to the main video's width.",
                         "corner": "Corner the inset sits in.", "start": "When the inset appears, in seconds."},
    "CompositeOverBackground": {"video": "Foreground video (green screen or with a mask).",
                                "background": "Image put behind the foreground.",
                                "key_color": "Screen colour to remove, as #rrggbb.",
                                "tolerance": "How far from the key colour still counts as screen (0-1).",
                                "mask": "Foreground masks instead of keying a colour."},
    "LoadAudio": {"audio_file": "Audio file in ComfyUI's input folder (wav, mp3, flac, ogg, m4a...)."},
    "SaveAudio": {"audio": "Sound to save."},
    "MixAudio": {"audio_a": "First sound.", "audio_b": "Second sound, mixed over the first.",
                 "gain_a_db": "Level change of the first sound in dB.",
                 "gain_b_db": "Level change of the second sound in dB.",
                 "offset": "Where the second sound starts, in seconds."},
    "OverlayMusic": {"dialogue": "Speech to keep clear.", "music": "Music under the speech.",
                     "music_db": "Music level in dB.", "duck_db": "How much the music dips while someone speaks (dB).",
                     "threshold_db": "Speech louder than this (dBFS) makes the music dip.",
                     "loop": "Repeat the music until the speech ends."},
    "FadeAudio": {"fade_in": "Fade-in length in seconds.", "fade_out": "Fade-out length in seconds."},
    "NormalizeLoudness": {"target_lufs": "Loudness to reach (LUFS; -16 suits speech on the web).",
                          "peak_db": "Highest allowed peak in dBFS."},
    "FitAudioToVideo": {"video": "The video whose length the sound must match.",
                        "mode": "pad: add silence when short; loop: repeat the sound. Longer sound is cut."},
    "DramaticSting": {"style": "Kind of sting: dun dun dun, suspense, triumph, sad trombone.",
                      "root_hz": "Pitch of the lowest note, in Hz."},
    "MusicBed": {"seconds": "Length of the music in seconds.", "mood": "Mood of the music.",
                 "bpm": "Tempo in beats per minute."},
    "LoadSAM2Model": {"model_name": "SAM2 checkpoint in models/sam2."},
    "SAM2SegmentImage": {"image": "Image to cut the subject out of."},
    "SAM2TrackVideo": {"video": "Video in which the subject is followed from the first frame on."},
    "FaceLandmarks": {"images": "Frames to find faces in.", "fps": "Frame rate of the frames (for smoothing in time)."},
    "FaceLandmarksVideo": {"video": "The video to find faces in."},
    "FacePreview": {"images": "Frames to draw on.", "point_size": "Dot size of each landmark, in pixels."},
    "ExpressiveMoment": {"window_seconds": "Length of the moment to find, in seconds.",
                         "scenes": "Only look inside these shots (optional)."},
    "ExaggerateExpression": {"images": "Frames with the face to exaggerate."},
    "ExaggerateExpressionVideo": {"video": "The video whose faces are exaggerated."},
    "CharacterSimilarity": {"image": "Image of the character to check.",
                            "method": "Face measure: insightface (ArcFace), dlib, stylized (landmark geometry for "
                                      "cartoon faces); auto picks what is installed.",
                            "reference_images": "Images of the character to compare with (default: the "
                                                "character's reference images)."},
    "ParodyMetrics": {"original": "The clip before exaggeration.", "result": "The exaggerated clip.",
                      "target_factor": "Exaggeration factor that was asked for.",
                      "analysis_size": "Longer side in pixels used for measuring (0 = full size).",
                      "landmarks": "Landmarks of the original clip, if already found (saves time)."},
    "CharacterVoice": {"text": "What the character says.",
                       "strength": "How strongly the emotion colours the voice (0 = neutral, 1 = full).",
                       "character": "Voice profile from configs/voices/.",
                       "backend": "Speech engine: auto tries the profile's backends in order (Piper works "
                                  "offline; GPT-SoVITS and XTTS clone a reference clip)."},
    "PiperTTS": {"text": "What is said.", "strength": "How strongly the emotion changes rate, pitch and energy.",
                 "pitch_semitones": "Pitch shift in semitones.", "rate": "Speaking rate (1 = normal)."},
    "GPTSoVITSTTS": {"text": "What is said.", "prompt_language": "Language spoken in the reference clip.",
                     "gpt_weights": "GPT weights as the GPT-SoVITS server names them (empty = its default).",
                     "sovits_weights": "SoVITS weights as the server names them (empty = its default).",
                     "server_url": "GPT-SoVITS API server, e.g. http://127.0.0.1:9880 (empty = settings)."},
    "XTTSTTS": {"text": "What is said.", "reference_audio": "Voice clip to clone, under models/voices/ or the "
                                                          "input folder.",
                "model": "XTTS model folder under models/.", "temperature": "Sampling temperature (lower = "
                                                                           "steadier, higher = livelier)."},
    "VoiceAnalysis": {"audio": "Speech to measure.", "character": "Compare with this character's reference "
                                                                   "voice (none = no likeness measure).",
                      "reference": "A voice clip to compare with instead of the character's.",
                      "synthesis_report": "Report of the voice node that made the speech (text, engine)."},
    "VoiceQualityCheck": {"report": "Report from Voice Analysis.",
                          "min_similarity": "Lowest accepted speaker similarity (cosine, -1 to 1).",
                          "min_duration_s": "Shortest accepted length in seconds.",
                          "max_duration_s": "Longest accepted length in seconds."},
    "LipSync": {"image": "Face image to animate.", "audio": "Speech the mouth follows.",
                "fps": "Frame rate of the result.",
                "method": "wav2lip (a model in models/wav2lip) or energy (mouth opens with loudness)."},
    "TranscribeSpeech": {"audio": "Speech to turn into text."},
    "LipSyncVideo": {"image": "Face image to animate.", "audio": "Speech the mouth follows.",
                     "fps": "Frame rate of the result.",
                     "method": "wav2lip (a model in models/wav2lip) or energy (mouth opens with loudness)."},
    "Character": {"name": "Character from configs/characters/."},
    "Prompt3D": {"subject": "Who is in the picture, in plain words.",
                 "extra_negative": "More things to avoid, added to the 3D-style negative prompt.",
                 "character": "A character (its trigger words and description replace the subject)."},
    "SDXLCheckpointLoader": {"ckpt_name": "SDXL checkpoint in models/checkpoints."},
    "SDXLLora": {"lora_name": "LoRA file in models/loras."},
    "SDXLCharacterLora": {"character": "Character whose LoRA is loaded (named in its configs/characters file).",
                          "weight": "LoRA strength (-1 = the character file's weight)."},
    "ControlNetStack": {"controlnet_name": "ControlNet in models/controlnet.",
                        "image": "Control image (pose skeleton, edges, depth) for this ControlNet.",
                        "strength": "How strongly the control image steers the picture.",
                        "start_percent": "When the control starts, as a fraction of the steps.",
                        "end_percent": "When the control stops, as a fraction of the steps.",
                        "controls": "ControlNets stacked before this one."},
    "SDXLSampler": {"positive": "What the picture should show.", "negative": "What it should not show.",
                    "steps": "Denoising steps (more = slower, finer).",
                    "cfg": "How closely the picture follows the prompt.",
                    "denoise": "1 = a new picture; lower keeps more of init_image.",
                    "init_image": "Start from this image instead of noise (image-to-image).",
                    "mask": "Only repaint where the mask is white (inpainting, with init_image).",
                    "reference": "Likeness reference from IP-Adapter or InstantID."},
    "CannyEdges": {"image": "Image to trace edges in.", "low_threshold": "Weaker edges below this are dropped.",
                   "high_threshold": "Edges above this are always kept."},
    "PoseSkeleton": {"image": "Image of a person whose pose becomes an OpenPose skeleton."},
    "DepthMap": {"image": "Image to estimate depth for.", "model_name": "DPT depth model folder in models/depth."},
    "IPAdapterReference": {"image": "Reference picture of the look to keep.",
                           "ipadapter_name": "IP-Adapter file in models/ipadapter.",
                           "scale": "How strongly the reference steers the picture."},
    "InstantIDReference": {"face_image": "Photo of the face to keep.",
                           "ip_scale": "How strongly the face identity steers the picture.",
                           "controlnet_strength": "How strongly the face keypoints fix its position.",
                           "insightface_pack": "Face analysis pack in models/insightface."},
    "AlphaMatte": {"mask": "Subject masks to turn into soft alpha mattes.",
                   "threshold": "Mask values below this become transparent."},
    "SharpnessFilter": {"images": "Candidate frames.", "threshold": "Lowest accepted sharpness (variance of the "
                                                                    "Laplacian; blurry frames score low).",
                        "masks": "Only measure sharpness inside these masks."},
    "DedupeFrames": {"images": "Candidate frames.", "max_distance": "Frames whose perceptual hashes differ by "
                                                                    "at most this many bits count as duplicates."},
    "BackgroundPlate": {"images": "Frames of one shot.", "masks": "Subject masks to remove.",
                        "lama_model": "LaMa inpainting model (TorchScript, e.g. big-lama.pt) in "
                                      "models/inpaint; OpenCV Telea fills the hole without it."},
    "CurateDataset": {"video": "The film to take training images from.",
                      "character": "Character the dataset is for (its references and trigger word).",
                      "dataset_name": "Folder name of the dataset inside the output folder.",
                      "frames_per_scene": "Frames sampled from each shot.",
                      "workers": "Parallel Ray workers on this machine (1 = no Ray).",
                      "references": "Reference images of the character (default: the character's)."},
    "LLMDirector": {"intent": "What you want, in plain words, e.g. 'make this clip quarter speed and add a "
                              "sting'.",
                    "character": "Character to use when the intent names none.",
                    "max_iterations": "How many times the Director may run, check and fix the result.",
                    "feedback": "What the previous check said (filled in by the Director's own loop).",
                    "history_json": "Earlier iterations (filled in by the Director's own loop).",
                    "iteration": "This iteration's number (filled in by the Director's own loop)."},
    "DirectorVerify": {"plan_json": "The plan that made the result (list of operations).",
                       "facts_json": "What was measured about the inputs (durations, sizes).",
                       "video": "Video result to check.", "images": "Image result to check.",
                       "audio": "Sound result to check."},
}


def tooltip_for(node_name: str, input_name: str) -> str | None:
    short = node_name[len(PREFIX):] if node_name.startswith(PREFIX) else node_name
    return BY_NODE.get(short, {}).get(input_name) or BY_NAME.get(input_name)


def add_tooltips(node_name: str, node_cls: type) -> None:
    """Wrap the class's INPUT_TYPES so every input without a tooltip gets this table's (once per class)."""
    if node_cls.__dict__.get("_animation_studio_tooltips"):
        return
    original = node_cls.INPUT_TYPES

    def input_types(cls=node_cls):
        types = copy.copy(original())
        for section in ("required", "optional"):
            if not isinstance(types.get(section), dict):
                continue
            inputs = dict(types[section])
            for name, spec in inputs.items():
                options = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 and isinstance(spec[1], dict) \
                    else {}
                text = tooltip_for(node_name, name)
                if text and not options.get("tooltip"):
                    inputs[name] = (spec[0], {**options, "tooltip": text}, *spec[2:])
            types[section] = inputs
        return types

    node_cls.INPUT_TYPES = classmethod(lambda cls: input_types())
    node_cls._animation_studio_tooltips = True
