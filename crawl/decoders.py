"""The Encoding Standard's decoders (encoding.spec.whatwg.org), built on Python's codecs where they agree.

Each legacy decoder is a Python codec plus the places where it reads bytes otherwise than the
Standard's index (encoding.spec.whatwg.org/index-*.txt). Those places were found by decoding every
byte sequence of each index with the codec; the codecs agree everywhere else:

- single-byte: windows-874 and windows-125x leave bytes undefined that the indexes map to the C1
  code point of the same number (0x81 is U+0081, as in latin-1); index-windows-1255 has 0xCA U+05BA;
  index-koi8-u is KOI8-RU (0xAE U+045E, 0xBE U+040E). Each decodes through one 256-entry table.
- gb18030 (GBK's labels too): byte 0x80 is U+20AC; 0xA3A0 is U+3000; 0xA8BC is U+1E3F and
  0x8135F437 U+E7C7 (GB18030-2005; Python has them the other way round); GB18030-2022
  (whatwg/encoding#336) gave 18 two-byte sequences non-private code points.
- Big5: ``_BIG5_ADDED`` (192 pointers of index-big5 that big5hkscs lacks, mostly HKSCS-2008) and 11
  pairs that big5hkscs reads as other characters (0xA145 U+2022 for U+2027, ...).
- EUC-JP, ISO-2022-JP: index-jis0208 is Windows' table: NEC row 13 (0xADA1 U+2460, ...) and the IBM
  rows 89-92 that euc_jp lacks, U+FF5E for its U+301C, .... cp932 agrees with that index at every
  pointer, so a pair euc_jp rejects is read through cp932.
- Shift_JIS: cp932 reads 0xA0 and 0xFD-0xFF as private-use characters; the Standard: errors.
- EUC-KR (cp949) and the single-byte codecs not listed agree with their indexes.

A codec character the index gives another sequence (Big5 0xA241/0xA242: big5hkscs's U+FF0F/U+FF3C
are 0xA1FE/0xA240's; EUC-JP 0x8FA2B7: euc_jp's '~') is decoded apart where it starts a character;
every other difference is a character only one sequence gives, replaced after decoding. Errors
consume bytes as the Standard's decoders do: a lead byte and a non-ASCII byte after it are one
U+FFFD, an ASCII byte after it is read again (checked against decoders written from the Standard's
algorithms on 300,000 random byte strings). Known gap: ISO-2022-JP's ``ESC ( I`` (katakana) is an
error here, and its error recovery is Python's. x-user-defined maps 0x80-0xFF to U+F780-U+F7FF.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

_FFFD = "\ufffd"

# Bytes 0x80-0x9F that Python's windows code pages leave undefined and each index maps to the C1 code
# point of the same number (index-windows-*.txt).
_C1_HOLES = {
    "cp874": "81-84 86-90 98-9F", "cp1250": "81 83 88 90 98", "cp1251": "98", "cp1252": "81 8D 8F 90 9D",
    "cp1253": "81 88 8A 8C-90 98 9A 9C-9F", "cp1254": "81 8D-90 9D 9E", "cp1255": "81 8A 8C-90 9A 9C-9F",
    "cp1257": "81 83 88 8A 8C 90 98 9A 9C 9F", "cp1258": "81 8A 8D-90 9A 9D 9E",
}
_SINGLE_BYTE_OTHER = {"cp1255": {0xCA: 0x05BA}, "koi8-u": {0xAE: 0x045E, 0xBE: 0x040E}}
SINGLE_BYTE = {"cp866", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5", "iso8859-6", "iso8859-7",
               "iso8859-8", "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16", "koi8-r",
               "koi8-u", "mac-roman", "mac-cyrillic", *_C1_HOLES, "cp1256", "x-user-defined"}


def _byte_ranges(spec: str) -> list[int]:
    """``"81 8C-90"`` -> [0x81, 0x8C, 0x8D, 0x8E, 0x8F, 0x90]."""
    out: list[int] = []
    for part in spec.split():
        first, _, last = part.partition("-")
        out += range(int(first, 16), int(last or first, 16) + 1)
    return out


@cache
def _single_byte_table(codec: str) -> str:
    """The 256 characters of a single-byte encoding, U+FFFD where its index has none."""
    if codec == "x-user-defined":
        return "".join(chr(b if b < 0x80 else 0xF780 + b - 0x80) for b in range(256))
    chars = [bytes([b]).decode(codec, errors="replace") for b in range(256)]
    for byte in _byte_ranges(_C1_HOLES.get(codec, "")):
        chars[byte] = chr(byte)
    for byte, point in _SINGLE_BYTE_OTHER.get(codec, {}).items():
        chars[byte] = chr(point)
    return "".join(chars)


# --- multi-byte: where a byte sequence is an error to the Python codec ---

def _pair_error(data: bytes, start: int, leads: range | set[int], trails: range | set[int],
                lookup: Callable[[int, int], str | None]) -> tuple[str, int]:
    """A two-byte decoder at an error: the index's pair the codec lacks, else U+FFFD (an ASCII trail kept)."""
    if data[start] not in leads:
        return _FFFD, start + 1
    if start + 1 >= len(data):
        return _FFFD, len(data)
    trail = data[start + 1]
    if trail in trails and (found := lookup(data[start], trail)):
        return found, start + 2
    return _FFFD, start + 1 + (trail >= 0x80)


def _jis0208(pointer: int) -> str | None:
    """index-jis0208 at ``pointer`` (0-8835), read through cp932, which agrees with it at every pointer."""
    row, cell = divmod(pointer, 188)
    sjis = bytes([row + (0x81 if row < 0x1F else 0xC1), cell + (0x40 if cell < 0x3F else 0x41)])
    try:
        return sjis.decode("cp932")
    except UnicodeDecodeError:
        return None


_EUC_BYTES = range(0xA1, 0xFF)
_EUC_LEADS = {0x8E, 0x8F, *_EUC_BYTES}


def _euc_jp_error(data: bytes, start: int, end: int) -> tuple[str, int]:
    """EUC-JP at an error: a jis0208 pair euc_jp lacks (NEC row 13, IBM rows 89-92), else U+FFFD."""
    if data[start] == 0x8F and start + 1 < len(data) and data[start + 1] in _EUC_BYTES:
        if start + 2 >= len(data):
            return _FFFD, len(data)
        return _FFFD, start + 2 + (data[start + 2] >= 0x80)  # a JIS X 0212 triple: the codec has the index
    return _pair_error(data, start, _EUC_LEADS, _EUC_BYTES,
                       lambda lead, trail: _jis0208((lead - 0xA1) * 94 + trail - 0xA1) if lead >= 0xA1 else None)


def _iso2022_jp_error(data: bytes, start: int, end: int) -> tuple[str, int]:
    """ISO-2022-JP at an error: a two-byte JIS X 0208 pair the codec lacks, else U+FFFD as the codec reads it."""
    pair = data[start:end]
    if len(pair) == 2 and all(0x21 <= b <= 0x7E for b in pair):
        return _jis0208((pair[0] - 0x21) * 94 + pair[1] - 0x21) or _FFFD, end
    return _FFFD, end


def _gb18030_error(data: bytes, start: int, end: int) -> tuple[str, int]:
    """gb18030 at an error: 0x80 is the euro sign; a bad four-byte form gives back all but its first byte."""
    lead, size = data[start], len(data)
    if lead == 0x80:
        return "\u20ac", start + 1
    if not 0x81 <= lead <= 0xFE:
        return _FFFD, start + 1
    if start + 1 >= size:
        return _FFFD, size
    second = data[start + 1]
    if not 0x30 <= second <= 0x39:
        return _FFFD, start + 1 + (second >= 0x80)
    if start + 2 >= size:
        return _FFFD, size
    if not 0x81 <= data[start + 2] <= 0xFE:
        return _FFFD, start + 1
    if start + 3 >= size:
        return _FFFD, size
    return _FFFD, start + (4 if 0x30 <= data[start + 3] <= 0x39 else 1)


_BIG5_TRAILS = {*range(0x40, 0x7F), *range(0xA1, 0xFF)}
_SJIS_LEADS = {*range(0x81, 0xA0), *range(0xE0, 0xFD)}
_SJIS_TRAILS = {*range(0x40, 0x7F), *range(0x80, 0xFD)}


def _big5_pair(lead: int, trail: int) -> str | None:
    """index-big5's character for a pair big5hkscs lacks, or None."""
    point = _BIG5_ADDED.get((lead - 0x81) * 157 + trail - (0x40 if trail < 0x7F else 0x62))
    return chr(point) if point else None


@dataclass(frozen=True)
class _MultiByte:
    """A Python codec and the index's readings where it differs."""

    python: str
    error: Callable[[bytes, int, int], tuple[str, int]]
    fix: dict[str, str] = field(default_factory=dict)  # the codec's character -> the index's; one sequence each
    aligned: dict[bytes, str] = field(default_factory=dict)  # sequences whose codec character another also gives


_JIS0208_FIX = {"\u301c": "\uff5e", "\u2016": "\u2225", "\u2212": "\uff0d", "\u00a2": "\uffe0", "\u00a3": "\uffe1",
                "\u00ac": "\uffe2"}
_MULTI_BYTE = {
    "gb18030": _MultiByte("gb18030", _gb18030_error, {
        "\ue5e5": "\u3000", "\ue7c7": "\u1e3f", "\u1e3f": "\ue7c7",
        # GB18030-2022: 0xA6D9-0xA6DF, 0xA6EC, 0xA6ED, 0xA6F3; 0xFE59, 0xFE61, 0xFE66, 0xFE67, 0xFE6D, 0xFE7E,
        # 0xFE90, 0xFEA0 (Python reads the private-use code points of GB18030-2005)
        "\ue78d": "\ufe10", "\ue78e": "\ufe12", "\ue78f": "\ufe11", "\ue790": "\ufe13", "\ue791": "\ufe14",
        "\ue792": "\ufe15", "\ue793": "\ufe16", "\ue794": "\ufe17", "\ue795": "\ufe18", "\ue796": "\ufe19",
        "\ue81e": "\u9fb4", "\ue826": "\u9fb5", "\ue82b": "\u9fb6", "\ue82c": "\u9fb7", "\ue832": "\u9fb8",
        "\ue843": "\u9fb9", "\ue854": "\u9fba", "\ue864": "\u9fbb"}),
    "big5hkscs": _MultiByte(
        "big5hkscs", lambda data, start, end: _pair_error(data, start, range(0x81, 0xFF), _BIG5_TRAILS, _big5_pair),
        {"\u2022": "\u2027", "\uff64": "\ufe51", "\u203e": "\u00af", "\u223c": "\uff5e", "\u2641": "\u2295",
         "\u2609": "\u2299", "\u00a5": "\uffe5", "\u00a2": "\uffe0", "\u00a3": "\uffe1"},
        {b"\xa2\x41": "\u2215", b"\xa2\x42": "\ufe68"}),  # big5hkscs: U+FF0F, U+FF3C, as for 0xA1FE, 0xA240
    "euc-jp": _MultiByte("euc_jp", _euc_jp_error, _JIS0208_FIX, {b"\x8f\xa2\xb7": "\uff5e"}),  # euc_jp: '~'
    "iso2022-jp": _MultiByte("iso2022_jp", _iso2022_jp_error, _JIS0208_FIX),
    "cp932": _MultiByte("cp932", lambda data, start, end: _pair_error(
        data, start, _SJIS_LEADS, _SJIS_TRAILS, lambda lead, trail: None),
        {"\uf8f0": _FFFD, "\uf8f1": _FFFD, "\uf8f2": _FFFD, "\uf8f3": _FFFD}),
    "cp949": _MultiByte("cp949", lambda data, start, end: _pair_error(
        data, start, range(0x81, 0xFF), range(0x41, 0xFF), lambda lead, trail: None)),
}


def _handler(read: Callable[[bytes, int, int], tuple[str, int]]) -> Callable[[UnicodeError], tuple[str, int]]:
    """A codecs error handler that reads a decoding error with ``read(data, start, end)``."""
    def handle(exc: UnicodeError) -> tuple[str, int]:
        if not isinstance(exc, UnicodeDecodeError):
            raise exc
        return read(exc.object, exc.start, exc.end)
    return handle


for _name, _codec in _MULTI_BYTE.items():
    codecs.register_error(f"whatwg-{_name}", _handler(_codec.error))
_FIX_PATTERN = {name: re.compile("[" + "".join(c.fix) + "]") for name, c in _MULTI_BYTE.items() if c.fix}


def _fix(text: str, codec: str) -> str:
    """Put the index's characters where the codec read others (``str.replace`` unless one feeds another)."""
    fix = _MULTI_BYTE[codec].fix
    present = [char for char in fix if char in text]
    if any(fix[char] in present for char in present):  # gb18030's U+1E3F / U+E7C7 swap: one pass
        return _FIX_PATTERN[codec].sub(lambda m: fix[m.group()], text)
    for char in present:
        text = text.replace(char, fix[char])
    return text


def _boundary(codec: _MultiByte, errors: str, data: bytes, start: int, stop: int) -> str | None:
    """The text of ``data[start:stop]`` if a character starts at ``stop``, else None."""
    # 0xFF is no trail byte and alone an error: after a whole character it adds a U+FFFD; after a lead
    # byte it makes one U+FFFD with it, as that lead byte alone at the end does
    head = data[start:stop].decode(codec.python, errors)
    probe = (data[start:stop] + b"\xff").decode(codec.python, errors)
    return head if len(probe) == len(head) + 1 else None


def _decode_aligned(codec: _MultiByte, errors: str, data: bytes) -> str:
    """Decode, reading each of ``codec.aligned`` by the index where it stands at a character boundary."""
    if not any(seq[:1] in data and seq in data for seq in codec.aligned):  # memchr first: 0x8F is rare in EUC-JP
        return data.decode(codec.python, errors)
    pieces, cut, pos = [], 0, 0
    pattern = re.compile(b"|".join(re.escape(seq) for seq in codec.aligned))
    while (match := pattern.search(data, pos)) is not None:
        pos = match.start() + 1
        head = _boundary(codec, errors, data, cut, match.start())
        if head is not None:
            pieces += [head, codec.aligned[match.group()]]
            cut = pos = match.end()
    pieces.append(data[cut:].decode(codec.python, errors))
    return "".join(pieces)


def decode(data: bytes, codec: str) -> str:
    """Decode ``data`` as the Encoding Standard's decoder for ``codec`` does (a Python codec if it has none)."""
    if codec == "replacement":
        return _FFFD if data else ""
    if codec in SINGLE_BYTE:
        return codecs.charmap_decode(data, "strict", _single_byte_table(codec))[0]
    multi = _MULTI_BYTE.get(codec)
    if multi is None:
        return data.decode(codec, errors="replace")
    errors = f"whatwg-{codec}"
    text = _decode_aligned(multi, errors, data) if multi.aligned else data.decode(multi.python, errors)
    return _fix(text, codec) if multi.fix else text


# index-big5 pointer -> code point, where Python's big5hkscs has no character: HKSCS-2008's additions
# and a few others. Generated from encoding.spec.whatwg.org/index-big5.txt (pointers it maps that
# big5hkscs rejects).
_BIG5_ADDED = {
    1000: 0x3875, 1001: 0x21D53, 1002: 0x2369E, 1003: 0x26021, 1004: 0x3EEC, 1005: 0x258DE,
    1006: 0x3AF5, 1007: 0x7AFC, 1008: 0x9F97, 1009: 0x24161, 1010: 0x2890D, 1011: 0x231EA,
    1012: 0x20A8A, 1013: 0x2325E, 1014: 0x430A, 1015: 0x8484, 1016: 0x9F96, 1017: 0x942F,
    1018: 0x4930, 1019: 0x8613, 1020: 0x5896, 1021: 0x974A, 1022: 0x9218, 1023: 0x79D0,
    1024: 0x7A32, 1025: 0x6660, 1026: 0x6A29, 1027: 0x889D, 1028: 0x744C, 1029: 0x7BC5,
    1030: 0x6782, 1031: 0x7A2C, 1032: 0x524F, 1033: 0x9046, 1034: 0x34E6, 1035: 0x73C4,
    1036: 0x25DB9, 1037: 0x74C6, 1038: 0x9FC7, 1039: 0x57B3, 1040: 0x492F, 1041: 0x544C,
    1042: 0x4131, 1043: 0x2368E, 1044: 0x5818, 1045: 0x7A72, 1046: 0x27B65, 1047: 0x8B8F,
    1048: 0x46AE, 1049: 0x26E88, 1050: 0x4181, 1051: 0x25D99, 1052: 0x7BAE, 1053: 0x224BC,
    1054: 0x9FC8, 1055: 0x224C1, 1056: 0x224C9, 1057: 0x224CC, 1058: 0x9FC9, 1059: 0x8504,
    1060: 0x235BB, 1061: 0x40B4, 1062: 0x9FCA, 1063: 0x44E1, 1064: 0x2ADFF, 1065: 0x62C1,
    1066: 0x706E, 1067: 0x9FCB, 2082: 0x7BB8, 2088: 0x7C06, 2103: 0x7CCE, 2114: 0x7DD2,
    2123: 0x7E1D, 2148: 0x8005, 2151: 0x8028, 2221: 0x83C1, 2239: 0x84A8, 2244: 0x840F,
    2303: 0x89A6, 2304: 0x89A9, 2354: 0x8D77, 2400: 0x90FD, 2413: 0x92B9, 2477: 0x975C,
    2498: 0x97FF, 2605: 0x9F16, 2673: 0x8503, 2746: 0x5159, 2747: 0x515B, 2748: 0x515D,
    2749: 0x515E, 2771: 0x936E, 2780: 0x7479, 2990: 0x6D67, 3087: 0x799B, 3259: 0x9097,
    3301: 0x975D, 3436: 0x701E, 3451: 0x5B28, 4136: 0x7201, 4138: 0x77D7, 4141: 0x7E87,
    4182: 0x99D6, 4206: 0x91D4, 4220: 0x60DE, 4230: 0x6FB6, 4241: 0x8F36, 4258: 0x4FBB,
    4273: 0x71DF, 4279: 0x9104, 4282: 0x9DF0, 4294: 0x83CF, 4329: 0x5C10, 4330: 0x79E3,
    4349: 0x5A67, 4419: 0x8F0B, 4422: 0x7B51, 4494: 0x62D0, 4624: 0x6062, 4694: 0x75F9,
    4708: 0x6C4A, 4742: 0x9B2E, 4748: 0x9F17, 4815: 0x50ED, 4828: 0x5F0C, 4902: 0x880F,
    4922: 0x62CE, 4982: 0x7468, 4992: 0x7162, 4997: 0x7250, 5432: 0x2400, 5433: 0x2401,
    5434: 0x2402, 5435: 0x2403, 5436: 0x2404, 5437: 0x2405, 5438: 0x2406, 5439: 0x2407,
    5440: 0x2408, 5441: 0x2409, 5442: 0x240A, 5443: 0x240B, 5444: 0x240C, 5445: 0x240D,
    5446: 0x240E, 5447: 0x240F, 5448: 0x2410, 5449: 0x2411, 5450: 0x2412, 5451: 0x2413,
    5452: 0x2414, 5453: 0x2415, 5454: 0x2416, 5455: 0x2417, 5456: 0x2418, 5457: 0x2419,
    5458: 0x241A, 5459: 0x241B, 5460: 0x241C, 5461: 0x241D, 5462: 0x241E, 5463: 0x241F,
    5464: 0x2421, 5465: 0x20AC, 10942: 0x5EF4, 10946: 0x65E0, 10948: 0x7676, 10950: 0x96B6,
    10957: 0x3003, 10958: 0x4EDD, 19028: 0x5029, 19035: 0x507D, 19088: 0x5305, 19096: 0x5344,
    19112: 0x537F, 19162: 0x5605, 19240: 0x5A77, 19299: 0x5E75, 19305: 0x5ED0, 19326: 0x5F58,
    19355: 0x60A4, 19398: 0x6490, 19439: 0x6674, 19454: 0x675E, 19553: 0x6C9C, 19554: 0x6E1D,
    19557: 0x6E2F, 19611: 0x716E, 19643: 0x732A, 19672: 0x745C, 19697: 0x74E9, 19748: 0x7809,
}
