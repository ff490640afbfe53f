"""Example python3-sci function: statistics of a raster chunk.

args (optional): {"dtype": "float32", "nodata": -9999}; dtype defaults to "<f4" (little-endian
float32), nodata to none. The chunk must hold whole pixels: NONE framing, offset and length
multiples of the pixel size.
Returns {"count", "nodata", "min", "max", "mean", "std", "sum", "sum_sq", "part"}: "count" valid
pixels, "nodata" the others (equal to args.nodata, NaN or infinite); min, max, mean and std
(population) of the valid pixels, null when there are none. Over all chunks of a raster,
mean = sum(sum) / sum(count) and std = sqrt(sum(sum_sq) / sum(count) - mean**2).
"""

import numpy

from eofaas import FunctionError


class BadArgument(FunctionError):
    pass


class MisalignedChunk(FunctionError):
    pass


def handle(data, ctx):
    dtype = parse_dtype(ctx.args.get("dtype", "<f4"))
    nodata = ctx.args.get("nodata")
    if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, (int, float))):
        raise BadArgument(f"args.nodata must be a number, got {nodata!r}")
    if data.cursor is not None and data.cursor.offset % dtype.itemsize:
        raise MisalignedChunk(f"cursor.offset {data.cursor.offset} is not a multiple of the "
                              f"{dtype.itemsize}-byte pixel")
    try:
        pixels = data.numpy(dtype)  # the chunk's bytes read once, straight into the array
    except ValueError as error:
        raise MisalignedChunk(str(error)) from None
    valid = numpy.isfinite(pixels)
    if nodata is not None:
        valid &= pixels != nodata
    values = pixels[valid].astype(numpy.float64)  # float64 sums: no float32 round-off drift
    result = {"count": int(values.size), "nodata": int(pixels.size - values.size)}
    if values.size:
        result.update(min=float(values.min()), max=float(values.max()), mean=float(values.mean()),
                      std=float(values.std()))
    else:
        result.update(min=None, max=None, mean=None, std=None)
    result.update(sum=float(values.sum()), sum_sq=float(numpy.dot(values, values)),
                  part=data.cursor.part if data.cursor else None)
    return result


def parse_dtype(spec):
    try:
        dtype = numpy.dtype(spec)
    except TypeError:
        raise BadArgument(f"args.dtype: not a numpy dtype: {spec!r}") from None
    if dtype.kind not in "fiu":
        raise BadArgument(f"args.dtype must be a numeric pixel type, got {dtype}")
    return dtype
