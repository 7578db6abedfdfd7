"""Speech to text with a trained `model.arch: asr` run: decoding, language-model fusion, windows.

megalith.transcribe.decode          frame logits -> token ids (greedy or beam, CTC)
megalith.transcribe.shallow_fusion  a GPT run as the beam search's language model
"""
