"""8-bit levels and float images in one pass each: round(255 x) as uint8 with whether every x is exactly
level / 255 (``levels_exact``), and level / 255 back to float32 (``levels_to_float``).

numpy needs a pass per step (the rounding conversion, the product ``255 x``, the comparison and its
reduction), and those extra passes were what kept the 8-bit median behind OpenCV's (docs/image.md).
This loop does all of it per value; LLVM (through llvmlite, numba's compiler library, no C compiler
needed) compiles it for this CPU at first use and vectorises it: it then costs what OpenCV's plain
conversion costs. Back to float, numpy casts and divides in two passes; one loop of IEEE divisions gives
the same floats bit for bit in 0.4-0.5x the time. Compiling takes ~0.05 s and importing llvmlite
~0.1-0.2 s, once per process; where llvmlite is missing or cannot compile, the functions say so (None,
False) and callers keep numpy's passes.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

# The loop over rows (each one contiguous, strides apart) of float32 x into uint8 levels:
#   p = 255 x (float32, as the numpy check computes it); k = rint(p clamped to 0..255; NaN -> 0);
#   exact while float(k) == p. x is a level exactly when float32(255 x) is a whole number 0..255
#   (cpu_image._SCALE says why); a NaN, an infinity or a value out of range fails the comparison.
#   It stops after the first row off the grid (a generated image: after its first row).
_IR = r"""
define i1 @levels_exact(ptr noalias readonly %x, i64 %x_stride, ptr noalias %out, i64 %out_stride,
                        i64 %rows, i64 %row_length) {
entry:
  br label %row
row:
  %r = phi i64 [0, %entry], [%r.next, %row.end]
  %bad.row = phi i8 [0, %entry], [%bad.next, %row.end]
  %x.offset = mul i64 %r, %x_stride
  %x.row = getelementptr i8, ptr %x, i64 %x.offset
  %out.offset = mul i64 %r, %out_stride
  %out.row = getelementptr i8, ptr %out, i64 %out.offset
  br label %value
value:
  %i = phi i64 [0, %row], [%i.next, %value]
  %bad = phi i8 [%bad.row, %row], [%bad.next, %value]
  %x.at = getelementptr float, ptr %x.row, i64 %i
  %v = load float, ptr %x.at, align 4
  %p = fmul float %v, 255.0
  %not.below = fcmp oge float %p, 0.0
  %not.above = fcmp ole float %p, 255.0
  %in.range = and i1 %not.below, %not.above
  %clamped = select i1 %in.range, float %p, float 0.0
  %whole = call float @llvm.rint.f32(float %clamped)
  %k = fptoui float %whole to i8
  %k.float = uitofp i8 %k to float
  %differs = fcmp une float %k.float, %p
  %differs.i8 = zext i1 %differs to i8
  %bad.next = or i8 %bad, %differs.i8
  %out.at = getelementptr i8, ptr %out.row, i64 %i
  store i8 %k, ptr %out.at, align 1
  %i.next = add i64 %i, 1
  %row.done = icmp eq i64 %i.next, %row_length
  br i1 %row.done, label %row.end, label %value
row.end:
  %r.next = add i64 %r, 1
  %all.done = icmp eq i64 %r.next, %rows
  %off.grid = icmp ne i8 %bad.next, 0
  %stop = or i1 %all.done, %off.grid
  br i1 %stop, label %exit, label %row
exit:
  %exact = icmp eq i8 %bad.next, 0
  ret i1 %exact
}

define void @levels_to_float(ptr noalias readonly %x, i64 %x_stride, ptr noalias %out, i64 %out_stride,
                             i64 %rows, i64 %row_length) {
entry:
  br label %row
row:
  %r = phi i64 [0, %entry], [%r.next, %row.end]
  %x.offset = mul i64 %r, %x_stride
  %x.row = getelementptr i8, ptr %x, i64 %x.offset
  %out.offset = mul i64 %r, %out_stride
  %out.row = getelementptr i8, ptr %out, i64 %out.offset
  br label %value
value:
  %i = phi i64 [0, %row], [%i.next, %value]
  %x.at = getelementptr i8, ptr %x.row, i64 %i
  %k = load i8, ptr %x.at, align 1
  %k.float = uitofp i8 %k to float
  %v = fdiv float %k.float, 255.0
  %out.at = getelementptr float, ptr %out.row, i64 %i
  store float %v, ptr %out.at, align 4
  %i.next = add i64 %i, 1
  %row.done = icmp eq i64 %i.next, %row_length
  br i1 %row.done, label %row.end, label %value
row.end:
  %r.next = add i64 %r, 1
  %all.done = icmp eq i64 %r.next, %rows
  br i1 %all.done, label %exit, label %row
exit:
  ret void
}

declare float @llvm.rint.f32(float)
"""

_ROWS = (ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)
_SIGNATURES = {"levels_exact": ctypes.CFUNCTYPE(ctypes.c_bool, *_ROWS), "levels_to_float": ctypes.CFUNCTYPE(None, *_ROWS)}
_lock = threading.Lock()
_compiled: dict[str, object] = {}  # "functions" (None when they cannot be built here) and the engine owning their code


def levels_exact(array: np.ndarray, out: np.ndarray) -> bool | None:
    """Write round(255 x) of float32 ``array`` into uint8 ``out`` (same shape) and say whether every x is
    exactly level / 255 (False as soon as a row is not: later rows are left unwritten); None (nothing
    written) when the kernel is unavailable or a row is not contiguous."""
    call = _row_call("levels_exact", array, np.float32, out, np.uint8)
    return None if call is None else bool(call())


def levels_to_float(levels: np.ndarray, out: np.ndarray) -> bool:
    """Write level / 255 of uint8 ``levels`` into float32 ``out`` (same shape; IEEE division, so numpy's float32
    ``levels / 255`` bit for bit) and say True; False (nothing written) where the kernel cannot run."""
    call = _row_call("levels_to_float", levels, np.uint8, out, np.float32)
    if call is None:
        return False
    call()
    return True


def _row_call(name: str, array: np.ndarray, array_dtype, out: np.ndarray, out_dtype):
    """The kernel ``name`` bound to the rows of ``array`` and ``out``, as a callable answering what the kernel does
    (for an empty array: True, with nothing to do); None when the kernel is unavailable or a row is not contiguous."""
    if array.dtype != array_dtype or out.dtype != out_dtype or array.shape != out.shape:
        raise ValueError(f"{name} needs {np.dtype(array_dtype)} in and {np.dtype(out_dtype)} out of one shape, "
                         f"got {array.dtype} {array.shape} and {out.dtype} {out.shape}")
    if array.size == 0:
        return lambda: True
    if array.ndim > 1:
        if not (array[0].flags.c_contiguous and out[0].flags.c_contiguous):
            return None
        rows, strides = array.shape[0], (array.strides[0], out.strides[0])
    else:
        if not (array.flags.c_contiguous and out.flags.c_contiguous):
            return None
        rows, strides = 1, (0, 0)
    functions = kernels()
    if functions is None:
        return None
    # ctypes releases the GIL for the call, so threads (ComfyUI's, the runtime's) convert images side by side
    return lambda: functions[name](array.ctypes.data, strides[0], out.ctypes.data, strides[1], rows, array.size // rows)


def kernels() -> dict | None:
    """The compiled loops as ctypes functions by name, built once per process; None where llvmlite cannot."""
    if "functions" not in _compiled:
        with _lock:
            if "functions" not in _compiled:
                _compiled["functions"] = _build()
    return _compiled["functions"]


def ready() -> bool:
    """Whether the loops are already compiled in this process (so using them costs nothing more)."""
    return _compiled.get("functions") is not None


def _build() -> dict | None:
    """Compile ``_IR`` for this CPU with LLVM's -O3 pipeline (the loop vectoriser does the SIMD)."""
    try:
        import llvmlite.binding as llvm

        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        try:
            cpu, features = llvm.get_host_cpu_name(), llvm.get_host_cpu_features().flatten()
        except RuntimeError:  # the host's features cannot be read on some platforms: LLVM's baseline then
            cpu, features = "", ""
        machine = llvm.Target.from_default_triple().create_target_machine(cpu=cpu, features=features, opt=3)
        module = llvm.parse_assembly(_IR)
        module.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=3)
        tuning.loop_vectorization = True
        passes = llvm.create_pass_builder(machine, tuning)
        passes.getModulePassManager().run(module, passes)
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
        _compiled["engine"] = engine  # the machine code lives as long as its engine
        return {name: signature(engine.get_function_address(name)) for name, signature in _SIGNATURES.items()}
    except (ImportError, AttributeError, RuntimeError, OSError):  # no llvmlite, an older one, no JIT here: numpy does it
        return None
