"""What an emitter reads: the file pass, the model view and its roles, the value scan, the user's limits.

The runner fills the stages the selected rules need, in order; a rule reads only the stage it declared
(the properties raise if the runner did not build it, which would be a bug in the registry's `needs`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from onnxaudit.check.data import FileCheck
from onnxaudit.check.values import ValueScan
from onnxaudit.cost.bound import model_cost
from onnxaudit.cost.estimate import CostReport
from onnxaudit.count.roles import RoleTable
from onnxaudit.count.table import ParamTable, param_table
from onnxaudit.io.datamap import FileMap
from onnxaudit.model.view import ModelView


@dataclass(frozen=True)
class CheckOptions:
    """Limits the user sets; a rule that reads one stays quiet while it is None."""

    max_params: int | None = None
    max_macs: int | None = None
    max_activation_memory: int | None = None  # bytes
    dims: tuple[tuple[str, int], ...] = ()  # free input dims bound for the cost limits (--dim)


@dataclass
class CheckContext:
    model: str
    files: FileMap
    file: FileCheck
    options: CheckOptions
    selected: frozenset[str]  # IDs of the rules that run
    params: int | None = None
    _view: ModelView | None = None
    _roles: RoleTable | None = None
    _table: ParamTable | None = None
    _values: ValueScan | None = field(default=None)
    _cost: CostReport | None = None
    _cost_done: bool = False

    def with_view(self, view: ModelView, roles: RoleTable, params: int) -> None:
        self._view, self._roles, self.params = view, roles, params

    def with_values(self, values: ValueScan) -> None:
        self._values = values

    @property
    def view(self) -> ModelView:
        if self._view is None:
            raise RuntimeError("a rule read the model view without declaring needs='view'")
        return self._view

    @property
    def roles(self) -> RoleTable:
        if self._roles is None:
            raise RuntimeError("a rule read the roles without declaring needs='view'")
        return self._roles

    @property
    def table(self) -> ParamTable:
        if self._table is None:
            self._table = param_table(self.roles)
        return self._table

    @property
    def cost(self) -> CostReport | None:
        """The model's MACs and memory (cost/), on the shapes static inference gives with `dims` bound;
        None when no shape is known (inference skipped on a huge graph, or failed)."""
        if not self._cost_done:
            costs = model_cost(self.view, self.view, None, dict(self.options.dims), self.table)
            self._cost, self._cost_done = (costs.report if costs is not None else None), True
        return self._cost

    @property
    def values(self) -> ValueScan:
        if self._values is None:
            raise RuntimeError("a rule read weight values without declaring needs='values'")
        return self._values
