"""A real pretrained network: PP-OCRv4's text-line recognizer, retrofitted for character error rate.

The recognizer ships as ONNX in the ``rapidocr-onnxruntime`` wheel; ``onnx2torch`` converts it into a
torch module (:mod:`.model`), which is retrofitted as it is through ``Aleph``. The lines are
generated and rendered here in a condition the model was not built for (:mod:`.lines`); the loss is
jiwer's character error rate after greedy CTC decoding (:mod:`.metric`); :mod:`.task` chooses the
ℵ-parameters. See docs/ocr.md.
"""
