"""Speech to text with a trained `model.arch: asr` run: decoding, language-model fusion, windows.

    megalith.transcribe.transcriber     Run.transcribe: files of any length -> text
    megalith.transcribe.decode          frame logits -> token ids (greedy or beam, CTC)
    megalith.transcribe.shallow_fusion  a GPT run as the beam search's language model

The numpy pieces they share with the torch-free bundle runtime live in megalith.runtime
(ctc.py: the decoders; windows.py and transcription.py: long recordings; speech.py: bundles).
"""
