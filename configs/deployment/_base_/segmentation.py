# Semantic FPN, whole-image inference: the class map ("output", argmax of
# the logits resized to the input size).
_base_ = ['./onnxruntime.py']
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)
