"""The framework view: Keras / PyTorch counts rebuilt through the rewrites exporters make.

view.py        framework_view: per layer, the first rule that rebuilds it, else the layer as stored
registry.py    the rules' order per origin (keras, pytorch, paddle, unknown): the only place precedence lives
context.py     FileContext (what a rule may ask of its file, computed once) and @rule (the op types it needs)
keras.py, tflite.py, torch.py, onnxruntime.py, onnxscript.py, paddle.py, ultralytics.py, lowered.py
               the rules, one module per exporter family (lowered: norms written out as ops, any exporter)
common.py      helpers the rules share (weight and bias pickers, channel counts, the layer as stored)
doubts.py      what may make a stored tensor no parameter of its layer (values made at export, buffers)
pairs.py       tensors that may be one parameter stored twice; copies.py settles a pair by sampled values
figures.py     Figure, FrameworkLayer, FrameworkView, FrameworkReport: the data the report and verify read
"""
