"""Active data segments of a wasm binary: where each one places its bytes in linear memory.

The GPU tier reads WGSL shaders from these segments as the module declares
them, so a shader is read intact even after the inputs overwrote that part of
linear memory, and whatever byte length the module passes.
"""

from __future__ import annotations

from dataclasses import dataclass

WASM_MAGIC = b"\x00asm"
DATA_SECTION_ID = 11
I32_CONST = 0x41
GLOBAL_GET = 0x23
END = 0x0B


@dataclass(frozen=True)
class DataSegment:
    """An active segment of memory 0: ``data`` is copied to ``offset`` when the module starts."""

    offset: int
    data: bytes

    def contains(self, address: int) -> bool:
        return self.offset <= address < self.offset + len(self.data)


class _Reader:
    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    def byte(self) -> int:
        if self.position >= len(self.data):
            raise ValueError("unexpected end of the wasm binary")
        value = self.data[self.position]
        self.position += 1
        return value

    def _leb128(self) -> tuple[int, int, int]:
        """Read one LEB128 number; returns its bits, their count and the last byte."""
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result, shift, byte

    def unsigned(self) -> int:
        result, _, _ = self._leb128()
        return result

    def signed(self) -> int:
        result, shift, last = self._leb128()
        return result - (1 << shift) if last & 0x40 else result

    def take(self, count: int) -> bytes:
        end = self.position + count
        if end > len(self.data):
            raise ValueError("unexpected end of the wasm binary")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk


def data_segments(wasm: bytes) -> list[DataSegment]:
    """Return the active data segments of memory 0 whose offset is an ``i32.const``.

    Passive segments, segments of other memories and segments placed by a
    ``global.get`` expression are skipped. Raises ValueError for bytes that are
    not a wasm binary (the runtime has already validated stored modules).
    """
    if wasm[:4] != WASM_MAGIC:
        raise ValueError("not a wasm binary")
    reader = _Reader(wasm, 8)
    while reader.position < len(wasm):
        section_id = reader.byte()
        size = reader.unsigned()
        body = reader.take(size)
        if section_id == DATA_SECTION_ID:
            return _parse_data_section(_Reader(body))
    return []


def _parse_data_section(reader: _Reader) -> list[DataSegment]:
    segments = []
    for _ in range(reader.unsigned()):
        flags = reader.unsigned()
        memory_index = 0
        offset: int | None = None
        if flags == 1:
            reader.take(reader.unsigned())
            continue
        if flags == 2:
            memory_index = reader.unsigned()
        offset = _const_offset(reader)
        data = reader.take(reader.unsigned())
        if memory_index == 0 and offset is not None:
            segments.append(DataSegment(offset & 0xFFFFFFFF, data))
    return segments


def _const_offset(reader: _Reader) -> int | None:
    """Read a segment's offset expression; returns its value when it is a plain ``i32.const``.

    A ``global.get`` offset returns None; any other expression raises ValueError.
    """
    opcode = reader.byte()
    value: int | None = None
    if opcode == I32_CONST:
        value = reader.signed()
    elif opcode == GLOBAL_GET:
        reader.unsigned()
    else:
        raise ValueError(f"unsupported data segment offset expression (opcode {opcode:#x})")
    if reader.byte() != END:
        raise ValueError("unsupported data segment offset expression")
    return value


def read_c_string(segments: list[DataSegment], address: int) -> bytes | None:
    """Return the bytes from ``address`` to the first NUL or the end of its segment.

    Returns None when no segment covers ``address``.
    """
    for segment in segments:
        if segment.contains(address):
            start = address - segment.offset
            end = segment.data.find(b"\x00", start)
            return segment.data[start : end if end != -1 else len(segment.data)]
    return None
