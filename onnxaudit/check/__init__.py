"""check: deployment rules over a model, each with an ID and a severity.

`onnxaudit.check` is both this package and the library's check function. Importing any module of the
package makes the import system set the attribute `onnxaudit.check` to this module, so the module itself
is callable: `onnxaudit.check(path, fail_on=...)` runs `runner.check` and returns its CheckReport.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onnxaudit.check.runner import CheckReport


class _CallablePackage(ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> CheckReport:
        from onnxaudit.check.runner import check  # the rules load on the first call, not on import

        return check(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
