"""onnxcore: onnx's message classes and C++ inference with onnx/__init__ deferred, and onnx whole after."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# a model with no shape arithmetic to fold (a torch nofold export would load numpy for constfold)
SEED = Path(__file__).resolve().parent.parent / "models" / "keras" / "seed_cnn__tf2onnx_op17.onnx"


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_reading_a_model_does_not_run_onnx_init_or_import_numpy():
    out = _python(
        "import sys\n"
        "from onnxaudit.api import audit\n"
        f"report = audit({str(SEED)!r})\n"
        "print(report.totals.total, 'onnx.helper' in sys.modules, 'numpy' in sys.modules)\n"
    )
    total, helper_loaded, numpy_loaded = out.split()
    assert int(total) > 0
    assert (helper_loaded, numpy_loaded) == ("False", "False")


def test_onnx_imported_afterwards_is_whole_and_shares_the_classes():
    out = _python(
        "from onnxaudit.io import onnxcore\n"
        "from onnxaudit.model.load import load\n"
        f"load({str(SEED)!r})\n"
        "import onnx.helper\n"
        "import onnx\n"
        "from onnx import checker, numpy_helper, shape_inference, TensorProto, helper\n"
        "assert onnx.ModelProto is onnxcore.ModelProto and onnx.TensorProto is onnxcore.TensorProto\n"
        "assert onnx.onnx_cpp2py_export.shape_inference is not None and onnx.__version__\n"
        "x = helper.make_tensor_value_info('x', TensorProto.FLOAT, [2])\n"
        "y = helper.make_tensor_value_info('y', TensorProto.FLOAT, None)\n"
        "g = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'g', [x], [y])\n"
        "m = helper.make_model(g)\n"
        f"checker.check_model(onnx.load({str(SEED)!r}))\n"
        "a = shape_inference.infer_shapes(m).graph.output[0].type.tensor_type.shape.dim[0].dim_value\n"
        "b = onnxcore.infer_shapes(m).graph.output[0].type.tensor_type.shape.dim[0].dim_value\n"
        f"m2 = onnx.load({str(SEED)!r})\n"
        "print(a, b, numpy_helper.to_array(m2.graph.initializer[0]).size > 0)\n"
    )
    assert out == "2 2 True"


def test_onnx_imported_first_is_used_as_it_is():
    out = _python("import onnx\nfrom onnxaudit.io import onnxcore\nprint(onnxcore.ModelProto is onnx.ModelProto)\n")
    assert out == "True"


HEAVY = ("onnx.helper", "onnx.numpy_helper", "ml_dtypes", "onnxruntime", "importlib.metadata")


def _modules_after(argv: list[str]) -> tuple[str, set[str]]:
    """The modules a whole CLI run (python -m onnxaudit ARGV) leaves loaded, and its output."""
    out = _python(
        "import contextlib, io, runpy, sys\n"
        f"sys.argv = ['onnxaudit', *{argv!r}]\n"
        "buffer = io.StringIO()\n"
        "with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):\n"
        "    runpy.run_module('onnxaudit', run_name='__main__')\n"
        "print(len(buffer.getvalue()))\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    printed, modules = out.split("\n")
    return printed, set(modules.split())


def test_summary_of_small_models_imports_nothing_heavy():
    # each would cost a small model's run most of its time (issue #24): onnx whole pulls in ml_dtypes
    torch_nofold = SEED.parent.parent / "torch" / "seed_cnn__legacy_nofold.onnx"  # constant folding: numpy only
    for path, numpy_expected in ((SEED, False), (torch_nofold, True)):
        printed, modules = _modules_after(["summary", str(path)])
        assert int(printed) > 200, path
        assert "onnxaudit.render.summary" in modules and "onnx.onnx_ml_pb2" in modules
        assert modules.isdisjoint(HEAVY), (path, sorted(modules & set(HEAVY)))
        assert ("numpy" in modules) == numpy_expected, path
        if numpy_expected:
            assert "onnxaudit.model.constfold" in modules


def test_check_of_a_small_model_imports_nothing_heavy():
    # the rules read onnx's schemas from its C++ module, not through onnx.defs (which runs onnx/__init__)
    printed, modules = _modules_after(["check", str(SEED)])
    assert int(printed) > 50
    assert "onnxaudit.check.rules.ops" in modules and "onnxaudit.check.rules.fileformat" in modules
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_schema_lookups_match_onnx_defs():
    out = _python(
        "from onnxaudit.io import onnxcore\n"
        "import onnx, onnx.defs\n"
        "assert onnxcore.schema_defs().has_schema is onnx.defs.has\n"
        "assert onnxcore.onnx_opset_version() == onnx.defs.onnx_opset_version()\n"
        "assert onnxcore.IR_VERSION == onnx.IR_VERSION and onnxcore.onnx_version() == onnx.__version__\n"
        "print('ok')\n"
    )
    assert out == "ok"
