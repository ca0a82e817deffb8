"""The hostile-input bombs of issue #17, each file under 20 MB: python benchmarks/bombs.py OUT_DIR [NAME...]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from builders import (  # noqa: E402
    HIDDEN_PLACES,
    NUMBERS,
    attribute_floats,
    concat_inputs,
    empty_graph_fields,
    empty_model_fields,
    empty_node_fields,
    empty_nodes,
    hidden_entries,
    hidden_numbers,
    long_text,
    many_dims,
    named_initializers,
    named_values,
    nested_if,
    shared_dim_name,
    small_branches,
    small_functions,
    small_node_entries,
    small_tensor_entries,
    small_value_infos,
    training_nodes,
)

BOMBS = {
    "nodes_1m": lambda: empty_nodes(1_000_000),
    "nodes_9m": lambda: empty_nodes(9_000_000),
    "nodes_250k": lambda: empty_nodes(249_999),  # at the default --max-nodes, with linear()'s MatMul
    "concat_1m": lambda: concat_inputs(1_000_000),
    "concat_3m": lambda: concat_inputs(3_000_000),
    "concat_999k": lambda: concat_inputs(999_996),  # with the other nodes' 4: 1,000,000 inputs, the default limit
    "if_16": lambda: nested_if(17).SerializeToString(),  # 16 levels under the top If: 2**17 - 1 graphs
    "if_14": lambda: nested_if(15).SerializeToString(),
    "if_13": lambda: nested_if(14).SerializeToString(),
    # nodes where a walk by size alone would not look: 4,900 If nodes under 4 KiB with 2,000 nodes a branch,
    # 9,000 functions of 1,000 nodes, 9M nodes in a training graph
    "branches_10m": lambda: small_branches(4_900, 2_000),
    "functions_9m": lambda: small_functions(9_000, 1_000),
    "training_9m": lambda: training_nodes(9_000_000),
    # 9M empty messages (2 bytes each) in every other repeated field of a graph, the model and a node
    "initializers_9m": lambda: empty_graph_fields(5, 9_000_000),
    "inputs_9m": lambda: empty_graph_fields(11, 9_000_000),
    "outputs_9m": lambda: empty_graph_fields(12, 9_000_000),
    "value_info_9m": lambda: empty_graph_fields(13, 9_000_000),
    "sparse_9m": lambda: empty_graph_fields(15, 9_000_000),
    "opsets_9m": lambda: empty_model_fields(8, 9_000_000),
    "metadata_9m": lambda: empty_model_fields(14, 9_000_000),
    "node_outputs_9m": lambda: empty_node_fields(2, 9_000_000),
    "attributes_9m": lambda: empty_node_fields(5, 9_000_000),
    "node_metadata_9m": lambda: empty_node_fields(9, 9_000_000),
    "dims_9m": lambda: many_dims(9_000_000),
    # the same in nodes under 4 KiB: 4,900 Relu nodes of 2,000 empty outputs or attributes each
    "small_node_outputs_10m": lambda: small_node_entries(2, 4_900, 2_000),
    "small_node_attributes_10m": lambda: small_node_entries(5, 4_900, 2_000),
    # entries in messages under 4 KiB, copied whole by the walk: 4,900 value infos of 2,000 dims, initializers of
    # 2,000 external-data entries, and each other place builders._HIDDEN names; then one message of 9M (18 MB)
    "small_value_info_dims_10m": lambda: small_value_infos(4_900, 2_000),
    "small_tensor_entries_10m": lambda: small_tensor_entries(4_900, 2_000),
    **{f"small_{where}_10m": (lambda w=where: hidden_entries(w, 4_900, 2_000)) for where in HIDDEN_PLACES},
    **{f"{where}_9m": (lambda w=where: hidden_entries(w, 1, 9_000_000)) for where in HIDDEN_PLACES},
    # numbers protobuf decodes from 1 byte of file into 8 (builders.NUMBERS): 4,900 messages under 4 KiB of 3,900
    # each (19 MB), one of 18M (18 MB); one a tag (2 bytes each): 1,950 and 9M. A large tensor's data is dropped
    **{
        f"small_{where}_{'10m' if 'unpacked' in where else '19m'}": (
            lambda w=where: hidden_numbers(w, 4_900, 1_950 if "unpacked" in w else 3_900)
        )
        for where in NUMBERS
    },
    **{
        f"{where}_{'9m' if 'unpacked' in where else '18m'}": (
            lambda w=where: hidden_numbers(w, 1, 9_000_000 if "unpacked" in w else 18_000_000)
        )
        for where in NUMBERS
    },
    # an attribute's floats: 4.5M packed in 18 MB, 4 bytes decoded into 4 (accepted: not counted)
    "attribute_floats_4m": lambda: attribute_floats(4_500_000),
    # at the default limits (accepted): 31,249 graphs (15,624 Ifs with two empty branches); 999,980 graph inputs,
    # value infos, initializers, attributes of one node, dims or ints of an attribute (a Relu's, a Constant's), each
    # with linear()'s own fields under 1,000,000
    "graphs_31k": lambda: small_branches(15_624, 0),
    "inputs_999k": lambda: empty_graph_fields(11, 999_980),
    "value_info_999k": lambda: empty_graph_fields(13, 999_980),
    "initializers_999k": lambda: empty_graph_fields(5, 999_980),
    "named_initializers_999k": lambda: named_initializers(999_980),
    "named_inputs_999k": lambda: named_values(11, 999_980),
    "named_value_infos_999k": lambda: named_values(13, 999_980),
    "named_value_infos_499k": lambda: named_values(13, 499_990),  # at the limit (2N): accepted
    "attributes_999k": lambda: empty_node_fields(5, 999_980),
    "dims_999k": lambda: many_dims(999_980),
    "attribute_ints_999k": lambda: hidden_numbers("attribute_ints", 1, 999_980),
    "constant_ints_999k": lambda: hidden_numbers("constant_ints", 1, 999_980),
    # one dim name of 100,000 characters shared by the shapes of 5,000 values (0.27 MB): shape inference copies it
    # into each, 500 MB of names; not bounded yet (BENCHMARKS.md, fourth round)
    "dim_name_100k_5k": lambda: shared_dim_name(100_000, 5_000),
    # one 18 MB text (a control and an invalid UTF-8 byte in every 64) in each place a name is printed from
    **{
        f"text_{where}": (lambda w=where: long_text(w, 18_000_000))
        for where in ("node_name", "op_type", "domain", "opset_domain", "producer", "dim_param", "metadata")
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split(":", 1)[0])
    parser.add_argument("out", metavar="OUT_DIR", type=Path, help="folder to write NAME.onnx files into")
    parser.add_argument("names", metavar="NAME", nargs="*", help="bombs to build (default: all)")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BOMBS]
    if unknown:
        parser.error(f"no bomb named {', '.join(unknown)} (choose from {', '.join(BOMBS)})")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in BOMBS.items():
        if not args.names or name in args.names:
            (args.out / f"{name}.onnx").write_bytes(build())


if __name__ == "__main__":
    main()
