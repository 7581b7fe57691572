#!/usr/bin/env python3
"""deploy/check-docs.py: the docs may promise only what the code does.

People learn from chirp's docs (README.md, docs/*.md, deploy/k8s/README.md), so a sentence
there is a promise, and a promise about code drifts the moment the code changes. This check
makes drift fail the test suite (deploy/test.sh runs it after `cargo test --workspace`, so the
debug binaries exist) and names the doc's file:line for each reference that does not resolve:

- paths: a relative link, or a path in backticks that starts with a folder of the repository
  (or of the doc's own folder), must exist; a link's #anchor must be a heading of its target;
- Rust items in backticks: `Type::member` (the type is defined; the member is a fn in a file
  that implements the type, or a variant/const in its own file), `crate_name::module::Item`
  (the module's file defines or re-exports the item), `function()` (some fn of that name);
  grep-level resolution on purpose: it catches renames and moves, and stays readable;
- names the code must use: an environment variable (UPPER_SNAKE in backticks, or VAR=value
  before a command), a metric (`chirp_*`), a port (`:8080`, "port 8080", a table's port
  column), a Kafka topic (a backticked name on a line about a topic), a Redis key pattern
  (`tl:{id}:pulled`: each literal part);
- command lines in code blocks and backticks: `loadtest`/`experiment` subcommands and flags
  (read from the binaries' own `--help`), `deploy/*.sh` arguments (the script must mention
  them), `cargo test/build/run -p PKG --test NAME FILTER` (the package and test exist, and
  cargo accepts the arguments);
- a file tree drawn in a code block: every entry exists, and a folder with a listed entry
  has all its entries listed;
- measured figures: a number with a unit of measure (ms, µs, /s, ×, %, MB, bytes an entry,
  min, s, …) may only appear inside a block that deploy/render-docs.py renders from a run
  committed under docs/runs/, and each such block must equal what its run renders now; so must
  the console's Strategy lab data (services/gateway/console/strategies.json) and its measured
  capacity figures (services/gateway/console/capacity.json).

What cannot be checked mechanically is rephrased, or marked with the one marker this check
knows: `<!-- unmeasured: REASON -->`, in a paragraph, list or table (or alone on the line
before one, or before a code block), says that the figures of that block are not measurements
(design constants, targets, the article's figures, computed examples), and REASON says which.

    deploy/check-docs.py              check the docs; exit 1 with one line per finding
    deploy/check-docs.py --self-test  prove the check fails: on a copy of the repository,
                                      rename a function a doc names and delete a file a doc
                                      links, and expect the doc's file:line each time
"""

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Folders that are build output or local state, never part of the tree a doc describes.
SKIP_DIRS = {".git", "target", ".backends", ".backends-chaos", "bench-results", "policies-results", "node_modules",
             "__pycache__", "loadtest-report"}
CODE_SUFFIXES = {".rs", ".sh", ".py", ".toml", ".yml", ".yaml", ".proto", ".cfg", ".json",
                 ".lua", ".js", ".html", ".css", ".example", ".conf", ".properties", ""}
MARKER = re.compile(r"<!--\s*unmeasured:\s*\S.*?-->")
RENDER_BEGIN = re.compile(r"<!--\s*render:\s*([\w.-]+)\s*-->")
RENDER_END = re.compile(r"<!--\s*end render\s*-->")
# A number followed by a unit of measure. Plain counts (users, follows, followers) and sizes of
# settings are not figures; durations, rates, ratios, percentages and sizes in bytes are.
# Whole seconds and minutes ("a 10 s freeze") are mostly settings, so only fractional ones and
# ranges ("6.2 s", "6-8 min") count as measured; a measured whole duration must be rephrased.
NUMBER = r"(?<![\w.:/#-])\d[\d  ,]*(?:\.\d+)?"
FIGURE = re.compile(
    rf"{NUMBER}\s?(?:-\s?\d[\d  ,]*(?:\.\d+)?\s?)?"
    r"(?:ms|µs|us|ns|×|%|(?:pages|req|requests|posts|tweets|inserts|edges|writes|reads|"
    r"rebuilds|ops)/s|(?:pages|requests|reads|writes|posts|tweets|inserts) (?:a|per) second|"
    r"KB|MB|GB|TB|KiB|MiB|GiB|B/entry|bytes(?: (?:an|per) entry)?)(?![\w/])"
    rf"|{NUMBER}(?:\.\d+\s?|\s?-\s?\d+(?:\.\d+)?\s?)(?:s|min|minutes|seconds|hours)\b"
)
# Variables that a library reads by itself, not chirp's code.
LIBRARY_ENV = {"TOKIO_WORKER_THREADS"}
BACKTICKS = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


# ---------------------------------------------------------------- the repository, as text

class Repo:
    """What the docs are checked against: the files of one checkout, read once."""

    def __init__(self, root, bin_dir=None):
        self.root = root
        # The binaries whose --help settles a command line: the test suite's debug builds.
        self.bin_dir = bin_dir or Path(os.environ.get(
            "CHECK_DOCS_BIN_DIR", Path(os.environ.get("CARGO_TARGET_DIR", root / "target")) / "debug"))
        self.files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            for name in sorted(names):
                self.files.append((Path(folder) / name).relative_to(root))
        self.rust = {f: self.read(f) for f in self.files if f.suffix == ".rs"}
        self.rust_text = "\n".join(self.rust.values())
        code = [f for f in self.files
                if f.suffix in CODE_SUFFIXES and f.suffix != ".md" and f.name != "openapi.json"]
        self.corpus = "\n".join(self.read(f) for f in code)
        self.crates = self._crates()
        self.defs = {}
        for file, text in self.rust.items():
            for kind, name in re.findall(
                    r"\b(fn|struct|enum|trait|type|const|static|mod|union|macro_rules!)\s+(\w+)", text):
                self.defs.setdefault(name, set()).add((kind, file))
        self.modules = {}
        for file in self.rust:
            name = file.parent.name if file.name == "mod.rs" else file.stem
            self.modules.setdefault(name, []).append(file)
        # gRPC services are generated at build time: their methods are the proto's rpcs.
        self.proto_services = {}
        for proto in (f for f in self.files if f.suffix == ".proto"):
            for service, body in re.findall(r"service\s+(\w+)\s*\{(.*?)\n\}", self.read(proto), re.S):
                self.proto_services[service] = {
                    re.sub(r"(?<!^)(?=[A-Z])", "_", rpc).lower() for rpc in re.findall(r"rpc\s+(\w+)", body)}
        lock = self.read(Path("Cargo.lock"))
        self.external = {n.replace("-", "_") for n in re.findall(r'name = "([^"]+)"', lock)}
        self.external |= {"std", "core", "alloc"}

    def read(self, path):
        try:
            return (self.root / path).read_text(errors="replace")
        except (FileNotFoundError, IsADirectoryError):
            return ""

    def exists(self, path):
        return (self.root / path).exists()

    def _crates(self):
        crates = {}
        for manifest in (f for f in self.files if f.name == "Cargo.toml"):
            name = re.search(r'^\[package\][^\[]*?^name = "([^"]+)"', self.read(manifest), re.M | re.S)
            if name:
                crates[name.group(1).replace("-", "_")] = manifest.parent
        return crates

    def package_dir(self, package):
        return self.crates.get(package.replace("-", "_"))


# ---------------------------------------------------------------- reading a doc

class Line:
    def __init__(self, number, text, fence, rendered, unmeasured):
        self.number, self.text = number, text
        self.fence = fence            # the code block's info string, or None outside one
        self.rendered = rendered      # the render block's name, or None
        self.unmeasured = unmeasured  # in a block marked `unmeasured`


def parse(text):
    """The doc's lines, each knowing its code block, render block and marker."""
    raw = text.split("\n")
    lines, fence, rendered = [], None, None
    for number, line in enumerate(raw, 1):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = stripped[3:].strip() or "text"
            lines.append(Line(number, line, "open", rendered, False))
            continue
        if fence is not None and stripped.startswith("```"):
            lines.append(Line(number, line, "close", rendered, False))
            fence = None
            continue
        if fence is None and RENDER_BEGIN.search(line):
            rendered = RENDER_BEGIN.search(line).group(1)
        elif fence is None and RENDER_END.search(line):
            rendered = None
        indented = fence is None and line.startswith("    ") and not line.lstrip().startswith(("-", "*", "|"))
        lines.append(Line(number, line, fence or ("indented" if indented else None), rendered, False))
    # A marker covers its block (the lines between two blank lines, or a code block), or the
    # block that follows it when it stands alone.
    blocks, current = [], []
    for line in lines:
        if line.fence in ("open", "close") or (line.fence not in (None, "indented")):
            if line.fence == "open" and current:
                blocks.append(current)
                current = []
            current.append(line)
            if line.fence == "close":
                blocks.append(current)
                current = []
        elif not line.text.strip():
            if current:
                blocks.append(current)
            current = []
        else:
            current.append(line)
    if current:
        blocks.append(current)
    pending = False
    for block in blocks:
        marked = any(MARKER.search(line.text) for line in block)
        alone = marked and all(MARKER.fullmatch(line.text.strip()) or not line.text.strip() for line in block)
        if alone:
            pending = True
            continue
        if marked or pending:
            for line in block:
                line.unmeasured = True
        pending = False
    return lines


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text):
    found = set()
    for line in parse(text):
        if line.fence is None and line.text.startswith("#"):
            found.add(slug(line.text.lstrip("#")))
    return found


# ---------------------------------------------------------------- the checks

class Checker:
    def __init__(self, repo, render):
        self.repo = repo
        self.render = render
        self.findings = []

    def fail(self, doc, line, message):
        self.findings.append(f"{doc}:{line.number}: {message}")

    def check_doc(self, doc):
        text = self.repo.read(doc)
        lines = parse(text)
        self.check_rendered(doc, lines)
        self.check_trees(doc, lines)
        for index, line in enumerate(lines):
            if line.fence in ("open", "close"):
                continue
            if line.fence is not None:
                self.check_code_line(doc, lines, index)
            else:
                self.check_prose_line(doc, line)
            if line.rendered is None and not line.unmeasured:
                self.check_figures(doc, line)
        self.check_port_columns(doc, lines)

    # -- prose

    def check_prose_line(self, doc, line):
        text = MARKER.sub("", line.text)
        for target in LINK.findall(text):
            self.check_link(doc, line, target)
        for url in re.findall(r"<(https?://[^>]+)>|\((https?://[^)]+)\)", text):
            self.check_ports_in(doc, line, url[0] or url[1])
        # The files the sentence names: a Type::member beside them must be defined there.
        self.scope = [Path(p.strip("`")) for p in re.findall(r"`([\w./-]+\.rs)`|\(([^)]+\.rs)\)", text)
                      for p in p if p]
        self.scope = [Path(os.path.normpath(doc.parent / p)) if not self.repo.exists(p) else p
                      for p in self.scope]
        for span in BACKTICKS.findall(text):
            self.check_span(doc, line, span.strip(), topic_line="topic" in text.lower())
        self.scope = []
        for metric in re.findall(r"\bchirp_[a-z0-9_]+\b", re.sub(r"\bchirp_\w+::", "", text)):
            self.check_metric(doc, line, metric)
        for ports in re.findall(r"\bports?\s+((?:\d{4,5}(?:-\d{4,5})?(?:,\s*|\s+and\s+|\s+)?)+)", text):
            for port in re.findall(r"\d{4,5}", ports):
                self.check_port(doc, line, port)
        self.check_ports_in(doc, line, re.sub(r"\d+\.\d+\.\d+\.\d+:\d+:", "", text))

    def check_link(self, doc, line, target):
        if re.match(r"^[a-z]+:", target):
            return
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path) if path else doc
        resolved = Path(os.path.normpath(resolved))
        if not self.repo.exists(resolved):
            self.fail(doc, line, f"link to {target}: {resolved} does not exist")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(self.repo.read(resolved)):
            self.fail(doc, line, f"link to {target}: {resolved} has no heading #{anchor}")

    def check_span(self, doc, line, span, topic_line):
        if span.startswith(("$ ", "cargo ", "loadtest ", "experiment ", "deploy/", "bash deploy/",
                            "target/", "CHIRP_", "BENCH_", "SCALE_")) and " " in span:
            self.check_command(doc, line, span.removeprefix("$ "))
            return
        for assignment in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", span):
            self.check_env(doc, line, assignment)
        if re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", span):
            self.check_env(doc, line, span)
        elif re.fullmatch(r"(?:[A-Za-z_]\w*::)+[A-Za-z_]\w*(?:\(\))?", span):
            self.check_item(doc, line, span.removesuffix("()"))
        elif re.fullmatch(r"[a-z_][a-z0-9_]*\(\)", span):
            if not any(kind == "fn" for kind, _ in self.repo.defs.get(span[:-2], ())):
                self.fail(doc, line, f"`{span}`: no fn {span[:-2]} in the code")
        elif re.fullmatch(r"[a-z]+:[^\s/]*[{<][^\s/]*", span):
            self.check_redis_key(doc, line, span)
        elif topic_line and re.fullmatch(r"[a-z][a-z0-9]*(?:[.-][a-z0-9]+)*", span) and \
                not self.repo.exists(span) and "-" in span:
            if span not in self.repo.corpus:
                self.fail(doc, line, f"Kafka topic `{span}`: the code never names it")
        elif "/" in span and " " not in span:
            self.check_path(doc, line, span)
        self.check_ports_in(doc, line, span)

    def check_path(self, doc, line, span):
        path = span.split("#")[0].split("::")[0].rstrip(":,.")
        if path.startswith(("/", "http", "dns:", ".")) and not path.startswith((".ci/", ".env")):
            return
        if re.search(r"[<>{}\[\]=|]", path) or path.startswith(("-", "~")):
            return
        first = path.split("/")[0]
        if first in SKIP_DIRS:
            return  # build output or local state: made by running something, not committed
        for base in (Path("."), doc.parent):
            if (self.repo.root / base / first).exists():
                candidates = [base / path]
                if "*" in path:
                    if list(self.repo.root.glob(str(base / path))):
                        return
                elif any(self.repo.exists(c) for c in candidates):
                    return
                self.fail(doc, line, f"`{span}`: no such file or folder")
                return

    def check_env(self, doc, line, name):
        if name in LIBRARY_ENV:
            return
        if not re.search(rf"\b{re.escape(name)}\b", self.repo.corpus):
            self.fail(doc, line, f"`{name}`: no code, script or manifest reads this variable")

    def check_metric(self, doc, line, metric):
        if metric.replace("_", "-") in ("chirp-" + c.removeprefix("chirp_").replace("_", "-")
                                        for c in self.repo.crates):
            return
        if metric in self.repo.crates:
            return
        base = re.sub(r"_(total|bucket|sum|count)$", "", metric)
        if not re.search(rf"\b{re.escape(base)}", self.repo.corpus):
            self.fail(doc, line, f"metric {metric}: the code never records it")

    def check_ports_in(self, doc, line, text):
        for port in re.findall(r"(?:127\.0\.0\.1|localhost|0\.0\.0\.0|^|[\s(`])\:(\d{4,5})\b", text):
            self.check_port(doc, line, port)

    def check_port(self, doc, line, port):
        if not re.search(rf"(?<![\d.]){port}(?!\d)", self.repo.corpus):
            self.fail(doc, line, f"port {port}: no code, script or manifest uses it")

    def check_port_columns(self, doc, lines):
        column = None
        for line in lines:
            cells = [c.strip() for c in line.text.strip().strip("|").split("|")]
            if line.fence is not None or not line.text.startswith("|"):
                column = None
            elif column is None:
                column = cells.index("port") if "port" in cells else -1
            elif column >= 0 and column < len(cells) and re.fullmatch(r"\d{4,5}", cells[column]):
                self.check_port(doc, line, cells[column])

    def check_redis_key(self, doc, line, span):
        for literal in re.split(r"[{<][^}>]*[}>]", span):
            literal = literal.strip(":")
            for word in filter(None, literal.split(":")):
                if not re.search(rf"(?:^|[:\"}}]){re.escape(word)}:|:{re.escape(word)}\b", self.repo.corpus):
                    self.fail(doc, line, f"Redis key `{span}`: the code never writes `{word}` in a key")

    # -- Rust items

    def check_item(self, doc, line, span):
        parts = span.split("::")
        first = parts[0]
        if first in ("crate", "self", "super"):
            crate_dirs = list(self.repo.crates.values())
        elif first in self.repo.crates:
            crate_dirs = [self.repo.crates[first]]
        elif re.sub(r"(Client|Server)$", "", first) in self.repo.proto_services:
            rpcs = self.repo.proto_services[re.sub(r"(Client|Server)$", "", first)]
            if len(parts) != 2 or parts[1] not in rpcs:
                self.fail(doc, line, f"`{span}`: the proto service {first} has no such rpc")
            return
        elif first[0].isupper() and first in self.repo.defs:
            self.check_member(doc, line, span, first, parts[1:], None)
            return
        elif first in self.repo.modules:
            if not any(self.resolves_in_module(module, parts[1:]) for module in self.repo.modules[first]):
                self.fail(doc, line, f"`{span}`: module {first} defines no {'::'.join(parts[1:])}")
            return
        elif first in self.repo.external or re.search(rf"\buse\b[^;]*\b{first}\b", self.repo.rust_text):
            return  # another crate's item (std's Duration, tonic's Status, ...)
        else:
            self.fail(doc, line, f"`{span}`: no crate or type {first} in the workspace")
            return
        for crate_dir in crate_dirs:
            if self.resolves_in_crate(crate_dir, parts[1:]):
                return
        self.fail(doc, line, f"`{span}`: not defined where it says")

    def resolves_in_crate(self, crate_dir, rest):
        src = crate_dir / "src"
        module = src / ("lib.rs" if (self.repo.root / src / "lib.rs").exists() else "main.rs")
        return self.resolves_in_module(module, rest)

    def resolves_in_module(self, module, rest):
        """Whether the path `rest` leads, from the module file `module`, to a module or an
        item (or a Type::member) defined or re-exported there."""
        folder = module.parent if module.name in ("lib.rs", "main.rs", "mod.rs") else \
            module.parent / module.stem
        crate_dir = next((d for d in self.repo.crates.values() if d in module.parents), None)
        for index, name in enumerate(rest):
            candidates = [folder / f"{name}.rs", folder / name / "mod.rs"]
            found = next((c for c in candidates if self.repo.exists(c)), None)
            if found:
                module, folder = found, folder / name
                continue
            text = self.repo.rust.get(module, "")
            if re.search(rf"\bmod\s+{name}\b", text) and index == len(rest) - 1:
                return True
            if not re.search(rf"\b(fn|struct|enum|trait|type|const|static|macro_rules!|mod)\s+{name}\b"
                             rf"|\buse\b[^;]*\b{name}\b", text):
                return False
            return self.member_ok(name, rest[index + 1:], crate_dir)
        return True

    def check_member(self, doc, line, span, type_name, members, crate_dir):
        if not self.member_ok(type_name, members, crate_dir):
            self.fail(doc, line, f"`{span}`: {type_name} has no {'::'.join(members)}")

    def member_ok(self, type_name, members, crate_dir):
        if not members:
            return True
        if len(members) > 1:
            return False
        member = members[0]
        type_files = {f for kind, f in self.repo.defs.get(type_name, ())
                      if kind in ("struct", "enum", "trait", "type", "union")}
        scoped = {f for f in type_files if f in getattr(self, "scope", [])}
        if scoped:
            type_files = scoped
            crate_dir = next((d for d in self.repo.crates.values() if d in next(iter(scoped)).parents), None)
        if crate_dir is not None:
            type_files = {f for f in type_files if crate_dir in f.parents} or type_files
        if not type_files:
            return False
        implementing = re.compile(rf"\bimpl\b[^{{;]*\b{type_name}\b[^{{;]*\{{")
        for file, text in self.repo.rust.items():
            if crate_dir is not None and crate_dir not in file.parents:
                continue
            if (file in type_files or implementing.search(text)) and \
                    re.search(rf"\bfn\s+{member}\b", text):
                return True
        # A variant of an enum, or an associated const, in the type's own file.
        return any(re.search(rf"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?{member}\b(?!\s*\()",
                             self.repo.rust[f], re.M) for f in type_files)

    # -- code blocks: commands and trees

    def check_code_line(self, doc, lines, index):
        line = lines[index]
        self.check_ports_in(doc, line, line.text)
        for metric in re.findall(r"\bchirp_[a-z0-9_]+\b", re.sub(r"\bchirp_\w+::", "", line.text)):
            self.check_metric(doc, line, metric)
        if line.fence not in ("console", "sh", "bash", "shell", "indented", "text"):
            return
        text = line.text.strip()
        if line.fence == "console":
            if not text.startswith("$ "):
                return
            text = text[2:]
        if index > 0 and lines[index - 1].fence == line.fence and lines[index - 1].text.rstrip().endswith("\\"):
            return  # a continuation, checked with the line it continues
        following = index
        while text.endswith("\\") and following + 1 < len(lines):
            following += 1
            text = text[:-1] + " " + lines[following].text.strip()
        self.check_command(doc, line, text)

    def check_command(self, doc, line, text):
        text = text.split(" #")[0].split("|")[0].split(" >")[0].split("&&")[0].strip()
        try:
            words = shlex.split(text.replace("$(", "").replace(")", ""))
        except ValueError:
            return
        prefixes = []
        while words and re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", words[0]):
            prefixes.append(words.pop(0).split("=")[0])
        for name in prefixes if words else []:  # VAR=value alone sets a shell variable
            self.check_env(doc, line, name)
        if words[:1] in (["bash"], ["sudo"], ["env"], ["export"]):
            words = words[1:]
            while words and re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", words[0]):
                self.check_env(doc, line, words.pop(0).split("=")[0])
        if not words:
            return
        program = words[0]
        if program in ("loadtest", "experiment") or re.fullmatch(r"target/\w+/(loadtest|experiment)", program):
            self.check_cli(doc, line, program.rsplit("/", 1)[-1], words[1:])
        elif program == "cargo":
            self.check_cargo(doc, line, words[1:])
        elif re.fullmatch(r"(\./)?deploy/[\w/.-]+\.sh", program):
            self.check_script(doc, line, program.removeprefix("./"), words[1:])

    def check_script(self, doc, line, script, args):
        if not self.repo.exists(script):
            self.fail(doc, line, f"{script}: no such script")
            return
        text = self.repo.read(script)
        for lib in re.findall(r"source \"\$REPO_DIR/([^\"]+)\"", text):
            text += self.repo.read(Path(lib))
        for arg in args:
            if arg.startswith("-") or re.fullmatch(r"[a-z][\w-]*", arg):
                if not re.search(rf"(?<![\w-]){re.escape(arg)}(?![\w-])", text):
                    self.fail(doc, line, f"{script} {arg}: the script knows no such argument")

    def check_cargo(self, doc, line, args):
        if not args or args[0] not in ("test", "build", "run", "check", "clippy"):
            return
        command, rest, positional, tests = args[0], args[1:], [], []
        if "--" in rest:
            rest, passed = rest[:rest.index("--")], rest[rest.index("--") + 1:]
            binary = {"loadtest": "loadtest", "chirp-experiment": "experiment"}.get(
                next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a in ("-p", "--package")), ""))
            if command == "run" and binary:
                self.check_cli(doc, line, binary, passed)
        iterator = iter(rest)
        for arg in iterator:
            if arg in ("-p", "--package"):
                package = next(iterator, "")
                if self.repo.package_dir(package) is None:
                    self.fail(doc, line, f"cargo {command} -p {package}: no such package")
                else:
                    tests.append(("package", package))
            elif arg == "--test":
                tests.append(("test", next(iterator, "")))
            elif arg in ("--features", "--bin", "--example", "--target-dir", "-j", "--profile"):
                next(iterator, None)
            elif not arg.startswith("-"):
                positional.append(arg)
        if command == "test" and len(positional) > 1:
            self.fail(doc, line, f"cargo test takes one test name filter, not {len(positional)} "
                                 f"({' '.join(positional)}): give more after `--`")
        packages = [name for kind, name in tests if kind == "package"]
        for kind, name in tests:
            if kind != "test":
                continue
            dirs = [self.repo.package_dir(p) for p in packages if self.repo.package_dir(p)] or \
                list(self.repo.crates.values())
            if not any(self.repo.exists(d / "tests" / f"{name}.rs") or
                       self.repo.exists(d / "tests" / name / "main.rs") for d in dirs):
                self.fail(doc, line, f"cargo {command} --test {name}: no such test target")

    def check_cli(self, doc, line, binary, args):
        path = []
        for arg in args:
            if arg.startswith("-"):
                break
            commands = subcommands(self.repo, binary, tuple(path))
            if commands is None:
                self.fail(doc, line, f"{binary} {' '.join(path)} --help does not run")
                return
            if not commands:
                break
            if arg not in commands:
                self.fail(doc, line, f"{binary} {' '.join(path + [arg])}: no such subcommand")
                return
            path.append(arg)
        options = flags(self.repo, binary, tuple(path))
        for arg in args:
            if arg.startswith("--") and arg.split("=")[0] not in options:
                self.fail(doc, line, f"{binary} {' '.join(path)} {arg.split('=')[0]}: no such flag")

    def check_trees(self, doc, lines):
        """A code block without a language whose lines are `path  description`, indented by
        depth: each entry must exist, and each folder with an entry listed has all listed."""
        index = 0
        while index < len(lines):
            if lines[index].fence != "open" or lines[index].text.strip() != "```":
                index += 1
                continue
            block = []
            index += 1
            while index < len(lines) and lines[index].fence != "close":
                block.append(lines[index])
                index += 1
            entries = [re.match(r"^(\s*)(\S+)(?:\s{2,}.*)?$", l.text) for l in block if l.text.strip()]
            if not entries or not all(entries) or not all(
                    re.fullmatch(r"[\w.-]+(/[\w.-]+)*/?", m.group(2)) and
                    ("/" in m.group(2) or "." in m.group(2)) for m in entries):
                continue
            listed, stack = set(), []
            for line, match in zip([l for l in block if l.text.strip()], entries):
                depth, name = len(match.group(1)), match.group(2)
                while stack and stack[-1][0] >= depth:
                    stack.pop()
                path = Path(stack[-1][1] if stack else ".") / name
                path = Path(os.path.normpath(path))
                if not self.repo.exists(path):
                    self.fail(doc, line, f"the tree lists {path}, which does not exist")
                listed.add(path)
                if name.endswith("/"):
                    stack.append((depth, path))
            parents = [p.parent for p in listed]
            # A folder must be listed whole when the tree lists it, or several of its entries
            # (the repository's own root: its folders).
            for folder in sorted({f for f in parents if f in listed or parents.count(f) > 1}):
                if not (self.repo.root / folder).is_dir():
                    continue
                children = {folder / c for c in os.listdir(self.repo.root / folder)
                            if c not in SKIP_DIRS and c != "README.md" and not c.startswith(".")}
                if folder == Path("."):
                    children = {c for c in children if (self.repo.root / c).is_dir()}
                missing = sorted(str(c) for c in children - listed
                                 if not any(c in p.parents for p in listed))
                if missing:
                    first = next(l for l in block if l.text.strip())
                    self.fail(doc, first, f"the tree does not list {', '.join(missing)}")

    # -- figures and rendered blocks

    def check_figures(self, doc, line):
        text = MARKER.sub("", line.text)
        text = re.sub(r"`[^`]*`|\]\([^)]*\)|<[^>]*>", "", text)
        for match in FIGURE.finditer(text):
            self.fail(doc, line, f"measured figure \"{match.group(0).strip()}\" outside a rendered "
                                 f"block: render it from a run under docs/runs/, or mark the "
                                 f"paragraph <!-- unmeasured: why -->")

    def check_rendered(self, doc, lines):
        text_lines = [l.text for l in lines]
        for index, line in enumerate(lines):
            begin = RENDER_BEGIN.search(line.text)
            if not begin or line.fence is not None:
                continue
            end = next((j for j in range(index + 1, len(lines)) if RENDER_END.search(lines[j].text)), None)
            if end is None:
                self.fail(doc, line, f"render block {begin.group(1)} has no <!-- end render -->")
                continue
            try:
                want = self.render.block(self.repo.root, begin.group(1))
            except Exception as error:  # a broken run file is a finding, not a crash
                self.fail(doc, line, f"render block {begin.group(1)}: {error}")
                continue
            have = [l.strip() for l in text_lines[index + 1:end]]
            if have != [l.strip() for l in want.strip().split("\n")]:
                self.fail(doc, line, f"render block {begin.group(1)} differs from what its run "
                                     f"renders: run deploy/render-docs.py")


def help_text(root, bin_dir, binary, path):
    exe = Path(bin_dir) / binary
    if exe.exists():
        return run_help((str(exe), *path, "--help"), None)
    package = {"loadtest": "loadtest", "experiment": "chirp-experiment"}[binary]
    return run_help(("cargo", "run", "-q", "-p", package, "--bin", binary, "--", *path, "--help"), str(root))


@lru_cache(maxsize=None)
def run_help(command, cwd):
    """A binary's --help, asked once per process (the self-test checks several copies)."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def subcommands(repo, binary, path):
    text = help_text(repo.root, repo.bin_dir, binary, path)
    if text is None:
        return None
    section = re.search(r"^Commands:\n((?:  .*\n?)+)", text, re.M)
    return set(re.findall(r"^  (\S+)", section.group(1), re.M)) - {"help"} if section else set()


def flags(repo, binary, path):
    return set(re.findall(r"--[\w-]+", help_text(repo.root, repo.bin_dir, binary, path) or ""))


def load_renderer(root):
    spec = importlib.util.spec_from_file_location("render_docs", root / "deploy" / "render-docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def docs_of(repo):
    found = [Path("README.md"), Path("deploy/k8s/README.md")]
    found += sorted(f for f in repo.files if f.parent == Path("docs") and f.suffix == ".md")
    found += sorted(f for f in repo.files if f.parent.parent == Path("docs") and f.suffix == ".md")
    return [f for f in found if repo.exists(f)]


def check(root, bin_dir=None):
    repo = Repo(root, bin_dir)
    checker = Checker(repo, load_renderer(ROOT))
    for doc in docs_of(repo):
        checker.check_doc(doc)
    lab = checker.render.CONSOLE_STRATEGIES
    if (Path(root) / lab).read_text() != checker.render.console_strategies(root):
        checker.findings.append(f"{lab}:1: the console's strategy results differ from what the "
                                f"committed run renders: run deploy/render-docs.py")
    plan = checker.render.CONSOLE_CAPACITY
    if (Path(root) / plan).read_text() != checker.render.console_capacity(root):
        checker.findings.append(f"{plan}:1: the console's measured capacity figures differ from "
                                f"what the committed run renders: run deploy/render-docs.py")
    policies = checker.render.CONSOLE_POLICIES
    if (Path(root) / policies).read_text() != checker.render.console_policies(root):
        checker.findings.append(f"{policies}:1: the console's policy results differ from what the "
                                f"committed runs render: run deploy/render-docs.py")
    return list(dict.fromkeys(checker.findings))  # a reference met twice on a line, once


# ---------------------------------------------------------------- the self-test

def self_test():
    """On a copy of the repository: rename a function a doc names, delete a file a doc links;
    each must produce a finding at the doc's line that names it."""
    repo = Repo(ROOT)
    item = file_of_item = link = None
    for doc in docs_of(repo):
        for line in parse(repo.read(doc)):
            if line.fence is not None:
                continue
            for span in BACKTICKS.findall(line.text):
                found = re.fullmatch(r"([A-Z]\w*)::([a-z_]\w*)(?:\(\))?", span)
                if item is None and found:
                    fn = found.group(2)
                    files = [f for f, t in repo.rust.items() if re.search(rf"\bfn\s+{fn}\b", t)]
                    if files:
                        item, file_of_item = (doc, line.number, span, fn), files
            for target in LINK.findall(line.text):
                path = Path(os.path.normpath(doc.parent / target.split("#")[0]))
                if link is None and not target.startswith("http") and (ROOT / path).is_file():
                    link = (doc, line.number, target, path)
    assert item and link, "the docs name no Type::method and link no file: nothing to test"
    cases = [
        (f"rename fn {item[3]} (named as `{item[2]}` at {item[0]}:{item[1]})",
         lambda copy: [rewrite(copy / f, rf"\bfn\s+{item[3]}\b", f"fn {item[3]}_renamed")
                       for f in file_of_item],
         f"{item[0]}:{item[1]}:"),
        (f"delete {link[3]} (linked at {link[0]}:{link[1]})",
         lambda copy: (copy / link[3]).unlink(),
         f"{link[0]}:{link[1]}:"),
    ]
    for name, mutate, expected in cases:
        with tempfile.TemporaryDirectory() as temp:
            copy = Path(temp) / "repo"
            shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(*SKIP_DIRS))
            before = set(check(copy, repo.bin_dir))
            mutate(copy)
            after = set(check(copy, repo.bin_dir)) - before
            hits = [f for f in after if f.startswith(expected)]
            print(f"self-test: {name}: {'fails as it should' if hits else 'NOT DETECTED'}")
            for finding in hits:
                print(f"  {finding}")
            if not hits:
                return 1
    return 0


def rewrite(path, pattern, replacement):
    path.write_text(re.sub(pattern, replacement, path.read_text()))


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if sys.argv[1:]:
        print(__doc__)
        return 2
    findings = check(ROOT)
    for finding in findings:
        print(finding)
    if findings:
        print(f"\n{len(findings)} doc reference(s) do not resolve (deploy/check-docs.py explains each kind)")
        return 1
    print("docs check: every reference resolves, every figure is rendered from its run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
