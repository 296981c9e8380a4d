#!/usr/bin/python3
"""Runs reskit's ONNX exports in runtimes that are not reskit: ONNX's checker and OpenCV's dnn.

    check_onnx.py DIR CASE... [--tolerance 1e-4]

For each CASE, DIR holds CASE.onnx (export_onnx), CASE_x.npy (an input batch, NHWC) and CASE_y.npy
(reskit's Model::forward(x, false) on it), written by reskit_io_write_onnx_sample. Each model must
pass onnx.checker.check_model (full check, with shape inference), follow the rules OpenCV 4.6
needs (no empty-named inputs, Gemm with transB = 1), and give outputs within the tolerance of
reskit's in cv2.dnn. Fails when python3-onnx, python3-opencv or numpy is missing (scripts/setup.sh
installs them). Run it with Debian's /usr/bin/python3.
"""
import argparse
import sys

try:
    import cv2
    import numpy as np
    import onnx
except ImportError as e:
    print(f"FAIL: {e.name} missing: scripts/setup.sh installs python3-onnx and python3-opencv")
    sys.exit(1)

FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)


def check_structure(case, model):
    graph = model.graph
    check(model.opset_import[0].version >= 13, f"{case}: opset {model.opset_import[0].version} < 13")
    names = {t.name for t in graph.initializer}
    for node in graph.node:
        check(all(i != "" for i in node.input), f"{case}: node {node.name} ({node.op_type}) has an empty input")
        if node.op_type == "Gemm":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            check(attrs.get("transB") == 1, f"{case}: Gemm {node.name} without transB=1")
        if node.op_type == "AveragePool":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            check(attrs.get("count_include_pad", 0) == 0, f"{case}: AveragePool {node.name} counts pads")
    check(any(n.endswith("/kernel:0") for n in names), f"{case}: no initializer named after a Keras kernel")
    (inp,) = graph.input
    dims = inp.type.tensor_type.shape.dim
    check(inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, f"{case}: input is not float32")
    check(len(dims) == 4, f"{case}: input rank {len(dims)}, expected 4 (NHWC)")


def run_case(directory, case, tolerance):
    path = f"{directory}/{case}.onnx"
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - report every checker failure the same way
        FAILURES.append(f"{case}: onnx.checker: {e}")
        return
    check_structure(case, model)
    x = np.load(f"{directory}/{case}_x.npy")
    want = np.load(f"{directory}/{case}_y.npy")
    net = cv2.dnn.readNetFromONNX(path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.setInput(x)
    got = net.forward()
    if got.shape != want.shape:
        FAILURES.append(f"{case}: OpenCV output shape {got.shape}, reskit's {want.shape}")
        return
    diff = float(np.max(np.abs(got - want)))
    print(f"{case}: input {x.shape}, output {got.shape}, max |OpenCV - reskit| = {diff:.3g}"
          f" (outputs in [{want.min():.3g}, {want.max():.3g}])")
    check(diff <= tolerance, f"{case}: max |OpenCV - reskit| = {diff:.3g} > {tolerance}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    print(f"onnx {onnx.__version__}, OpenCV {cv2.__version__}")
    for case in args.cases:
        run_case(args.directory, case, args.tolerance)
    for f in FAILURES:
        print("FAIL:", f)
    failed = len({f.split(":")[0] for f in FAILURES})
    print(f"check_onnx: {len(args.cases) - failed} of {len(args.cases)} cases match")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
