"""onnx's protobuf classes and its C++ shape inference, without paying for `import onnx` up front.

`import onnx` runs onnx/__init__.py, which imports numpy, the helper, checker, compose, reference
and version-converter modules and importlib.metadata: ~0.13 s here, a third of a whole `summary` of
a 1.5 GB model. Reading a model needs only two of onnx's modules: `onnx.onnx_ml_pb2` (the message
classes) and the C++ extension (shape inference). When onnx is not imported yet, the package object
is put in sys.modules with its __init__ deferred: the two modules are imported into it as usual, and
the first use of any other name of the package (or any other submodule import) runs the real
__init__ in that same module object. The classes are onnx's own (`onnx.ModelProto is
onnxcore.ModelProto` afterwards), and the C++ extension is loaded once: it cannot be loaded twice.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from onnxaudit.io.isolate import run_isolated

__all__ = [
    "INFERENCE_TIMEOUT",
    "IR_VERSION",
    "AttributeProto",
    "FunctionProto",
    "GraphProto",
    "ModelProto",
    "NodeProto",
    "SparseTensorProto",
    "TensorProto",
    "TypeProto",
    "infer_shapes",
    "onnx_opset_version",
    "onnx_version",
    "prepare_inference",
    "schema_defs",
]

# shape inference is milliseconds even at 20k nodes; far longer means it is stuck
INFERENCE_TIMEOUT = 60.0


def _defer_package_init() -> None:
    """Put the onnx package in sys.modules with its __init__ not yet run."""
    spec = importlib.util.find_spec("onnx")
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return  # not a normal installed package: let the plain import below say what is wrong
    package = importlib.util.module_from_spec(spec)
    search_path = package.__path__

    def run_init(name: str) -> object:
        # PEP 562 hook: the package lacks `name`, so run the real __init__ now, once
        namespace = vars(package)
        namespace.pop("__getattr__", None)
        namespace["__path__"] = search_path
        spec.loader.exec_module(package)  # type: ignore[union-attr]
        try:
            return namespace[name]
        except KeyError:
            raise AttributeError(f"module 'onnx' has no attribute {name!r}") from None

    sys.modules["onnx"] = package
    try:
        importlib.import_module("onnx.onnx_ml_pb2")
        importlib.import_module("onnx.onnx_cpp2py_export.shape_inference")
    except BaseException:
        run_init("__name__")  # fall back to the ordinary import, in the same module object
        raise
    # hiding __path__ sends any later submodule import (`import onnx.helper`) through run_init
    # first, as an ordinary import would
    del package.__path__
    # PEP 562: a module's __getattr__ is a plain attribute; typeshed declares ModuleType's as a method
    package.__getattr__ = run_init  # type: ignore[method-assign]


def _import_core() -> tuple[ModuleType, ModuleType]:
    if "onnx" not in sys.modules:
        try:
            _defer_package_init()
        except Exception:  # a changed onnx layout: the ordinary import still works, only slower
            pass
    return (
        importlib.import_module("onnx.onnx_ml_pb2"),
        importlib.import_module("onnx.onnx_cpp2py_export.shape_inference"),
    )


_PB, _SHAPE_INFERENCE = _import_core()

if TYPE_CHECKING:  # the same classes, as onnx's stubs declare them
    from onnx.onnx_ml_pb2 import (
        AttributeProto,
        FunctionProto,
        GraphProto,
        ModelProto,
        NodeProto,
        SparseTensorProto,
        TensorProto,
        TypeProto,
    )
else:
    AttributeProto = _PB.AttributeProto
    FunctionProto = _PB.FunctionProto
    GraphProto = _PB.GraphProto
    ModelProto = _PB.ModelProto
    NodeProto = _PB.NodeProto
    SparseTensorProto = _PB.SparseTensorProto
    TensorProto = _PB.TensorProto
    TypeProto = _PB.TypeProto


IR_VERSION: int = _PB.IR_VERSION  # onnx.IR_VERSION


def schema_defs() -> ModuleType:
    """onnx.defs' C++ module (has_schema, get_all_schemas_with_history, schema_version_map): onnx.defs
    itself runs onnx/__init__, and the extension holding this one is loaded already."""
    return importlib.import_module("onnx.onnx_cpp2py_export.defs")


def prepare_inference() -> None:
    """Build onnx's operator schema registry in this process now, once (~9 ms of CPU; it takes ~7 MiB): shape
    inference builds it on its first call, which happens in a forked child (infer_shapes), and each child would
    build it again. Called while the forked wire walk runs (model/load.py), so it costs no wall time on a
    machine with a core to spare, and every inference child inherits it. Reads nothing from any file."""
    schema_defs().has_schema("Relu")


def onnx_opset_version() -> int:
    """onnx.defs.onnx_opset_version()."""
    return int(schema_defs().schema_version_map()[""][1])


def onnx_version() -> str:
    """onnx.__version__, which onnx/__init__ reads with importlib.metadata: only for a message that names it."""
    import onnx

    return onnx.__version__


def infer_shapes(
    model: ModelProto,
    check_type: bool = False,
    strict_mode: bool = False,
    data_prop: bool = False,
    timeout: float = INFERENCE_TIMEOUT,
) -> ModelProto:
    """onnx.shape_inference.infer_shapes on `model`, run in a forked child (isolate.py): the C++
    reads a structure the file controls. Raises IsolatedFailure (one line) when inference raises,
    crashes or runs out of time or memory."""
    data = model.SerializeToString()
    answer = run_isolated(lambda: _SHAPE_INFERENCE.infer_shapes(data, check_type, strict_mode, data_prop), timeout)
    inferred = ModelProto()
    inferred.ParseFromString(answer)  # type: ignore[arg-type]  # any buffer parses; the stub says bytes
    return inferred
