"""A numpy stand-in for the part of `triton` / `triton.language` that bench/vllm_fused_moe.py uses,
for the CPU tests only (bench/test_vllm_moe.py): `kernel[grid](...)` runs the kernel's Python body
once per program id, in order, with numpy arrays for blocks and bounds-checked pointers, so the
port's own kernel source (index arithmetic, masks, the align and top-k logic) runs without a GPU.

What it does not check: anything Triton's compiler decides (layouts, shared memory, whether a
construct compiles). Every unmasked load or store must be in bounds, else IndexError.
"""
from __future__ import annotations

import sys
import types

import numpy as np
import torch

__version__ = "numpy-stub"


class _DType:
    def __init__(self, name, np_dtype):
        self.name, self.np = name, np_dtype

    def __repr__(self):
        return f"stub.{self.name}"


int1 = _DType("int1", np.bool_)
int32 = _DType("int32", np.int32)
int64 = _DType("int64", np.int64)
float32 = _DType("float32", np.float32)
float16 = _DType("float16", np.float16)
bfloat16 = _DType("bfloat16", np.float32)  # numpy has no bf16; the tests run fp32
_BY_TORCH = {torch.float32: float32, torch.float16: float16, torch.bfloat16: bfloat16, torch.int32: int32,
             torch.int64: int64, torch.bool: int1}


class constexpr:  # noqa: N801 - the annotation the kernels use
    pass


def _np(x):
    return x.a if isinstance(x, T) else x


class T:
    """A block (or scalar) value: a numpy array with Triton's .to() and operators."""

    __array_priority__ = 1000

    def __init__(self, a):
        self.a = np.asarray(a)

    def to(self, dtype):
        return T(self.a.astype(dtype.np))

    @property
    def dtype(self):
        return self.a.dtype

    @property
    def shape(self):
        return self.a.shape

    def __getitem__(self, idx):
        return T(self.a[idx])

    def __bool__(self):
        if self.a.size != 1:
            raise ValueError("a block used as a condition")
        return bool(self.a.reshape(-1)[0])

    def __int__(self):
        return int(self.a)

    def __index__(self):
        return int(self.a)

    def __neg__(self):
        return T(-self.a)

    def __invert__(self):
        return T(~self.a)


def _binop(name, fn):
    def op(self, other):
        if isinstance(other, Ptr):
            return NotImplemented
        return T(fn(self.a, _np(other)))

    def rop(self, other):
        return T(fn(_np(other), self.a))

    setattr(T, f"__{name}__", op)
    setattr(T, f"__r{name}__", rop)


for _n, _f in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("truediv", np.true_divide),
               ("floordiv", np.floor_divide), ("mod", np.mod), ("and", np.bitwise_and), ("or", np.bitwise_or)]:
    _binop(_n, _f)
for _n, _f in [("lt", np.less), ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
               ("eq", np.equal), ("ne", np.not_equal)]:
    setattr(T, f"__{_n}__", (lambda f: lambda self, other: T(f(self.a, _np(other))))(_f))
T.__hash__ = None


def _inplace(name):
    def op(self, other):
        return getattr(self, f"__{name}__")(other)

    setattr(T, f"__i{name}__", op)


for _n in ("add", "sub", "mul", "truediv"):
    _inplace(_n)


class _PtrDType:
    def __init__(self, element_ty):
        self.element_ty = element_ty


class Ptr:
    """A tensor's flat storage plus element offsets (a scalar or a block)."""

    def __init__(self, buf: np.ndarray, dtype, off=0):
        self.buf, self.dtype, self.off = buf, _PtrDType(dtype), np.asarray(off, dtype=np.int64)

    def __add__(self, other):
        return Ptr(self.buf, self.dtype.element_ty, self.off + np.asarray(_np(other), dtype=np.int64))

    __radd__ = __add__

    def __sub__(self, other):
        return Ptr(self.buf, self.dtype.element_ty, self.off - np.asarray(_np(other), dtype=np.int64))

    def __iadd__(self, other):
        return self.__add__(other)


def _masks(ptr, mask):
    off = ptr.off
    m = np.ones(off.shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(_np(mask), dtype=bool), np.broadcast_shapes(off.shape, np.shape(_np(mask))))
    off = np.broadcast_to(off, m.shape)
    bad = m & ((off < 0) | (off >= ptr.buf.size))
    if bad.any():
        raise IndexError(f"unmasked access out of bounds: offsets {off[bad][:5]} of a buffer of {ptr.buf.size}")
    return off, m


def load(ptr, mask=None, other=None, **_):
    off, m = _masks(ptr, mask)
    out = np.zeros(off.shape, dtype=ptr.buf.dtype)
    if other is not None:
        out[...] = _np(other)
    out[m] = ptr.buf[off[m]]
    return T(out)


def store(ptr, value, mask=None, **_):
    off, m = _masks(ptr, mask)
    v = np.broadcast_to(np.asarray(_np(value)), off.shape)
    ptr.buf[off[m]] = v[m].astype(ptr.buf.dtype)


_PID = [0, 0, 0]


def program_id(axis):
    return T(np.int32(_PID[axis]))


def arange(start, end):
    return T(np.arange(start, end, dtype=np.int32))


def zeros(shape, dtype):
    return T(np.zeros(shape, dtype=dtype.np))


def full(shape, value, dtype):
    return T(np.full(shape, value, dtype=dtype.np))


def where(cond, x, y):
    return T(np.where(_np(cond), _np(x), _np(y)))


def _reduce(fn):
    def r(x, axis=None, **_):
        return T(fn(_np(x), axis=axis))
    return r


sum = _reduce(np.sum)  # noqa: A001
max = _reduce(np.max)  # noqa: A001
min = _reduce(np.min)  # noqa: A001


def cumsum(x, axis=0, **_):
    a = _np(x)
    return T(np.cumsum(a, axis=axis).astype(a.dtype))


def exp(x):
    return T(np.exp(_np(x)))


def maximum(x, y):
    return T(np.maximum(_np(x), _np(y)))


def minimum(x, y):
    return T(np.minimum(_np(x), _np(y)))


def dot(a, b, acc=None, **_):
    r = _np(a).astype(np.float32) @ _np(b).astype(np.float32)
    return T(r if acc is None else _np(acc) + r)


def cdiv(a, b):
    return (_np(a) + b - 1) // b


def static_range(*a):
    return range(*a)


def debug_barrier():
    pass


class _Kernel:
    def __init__(self, fn):
        self.fn = fn

    def __getitem__(self, grid):
        grid = tuple(grid) + (1,) * (3 - len(grid))

        def launch(*args, **kwargs):
            kwargs.pop("num_warps", None)
            kwargs.pop("num_stages", None)
            def conv(v):
                if not isinstance(v, torch.Tensor):
                    return v
                if v.dtype == torch.bfloat16:
                    raise TypeError("the numpy stub runs fp32/fp16/int tensors only")
                if not v.is_contiguous():
                    raise ValueError("the numpy stub needs contiguous tensors (stores must reach the tensor)")
                return Ptr(v.reshape(-1).numpy(), _BY_TORCH[v.dtype])
            args = [conv(a) for a in args]
            kwargs = {k: conv(v) for k, v in kwargs.items()}
            for z in range(grid[2]):
                for y in range(grid[1]):
                    for x in range(grid[0]):
                        _PID[:] = [x, y, z]
                        self.fn(*args, **kwargs)
        return launch


def jit(fn=None, **_):
    if fn is None:
        return lambda f: _Kernel(f)
    return _Kernel(fn)


def install() -> None:
    """Makes `import triton` / `import triton.language as tl` give this stub."""
    mod = sys.modules[__name__]
    triton = types.ModuleType("triton")
    triton.jit = jit
    triton.cdiv = lambda a, b: -(-a // b)
    triton.__version__ = __version__
    triton.language = mod
    sys.modules["triton"] = triton
    sys.modules["triton.language"] = mod
