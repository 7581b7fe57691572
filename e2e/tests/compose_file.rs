//! Checks `docker-compose.yml` and `.env.example` against the services' own
//! `Config`s, without Docker.
//!
//! The compose file wires five binaries to four backends through environment
//! variables, and nothing else notices a typo there until a container fails to
//! start, or worse, starts and quietly talks to its own 127.0.0.1. Each
//! service's clap `Config` already knows every variable it reads, which are
//! required, their defaults and how they parse, so these tests hold the
//! deployment files to it: the files cannot drift from the code. A failure
//! lists everything wrong at once, naming the service and the variable.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use clap::CommandFactory;
use serde::Deserialize;

/// The workspace's binaries and the clap command of each one's `Config`.
const BINARIES: [Binary; 5] = [
    Binary { name: "gateway", command: gateway::Config::command },
    Binary { name: "tweet", command: tweet::Config::command },
    Binary { name: "graph", command: graph::Config::command },
    Binary { name: "timeline", command: timeline::Config::command },
    Binary { name: "fanout", command: fanout::Config::command },
];

/// Read by the logger (`EnvFilter`) rather than by clap, in every binary.
const LOGGER_VARIABLES: [&str; 1] = ["RUST_LOG"];

/// Settings of one process that may differ between services; any other
/// variable read by several services must have one value across them.
const PER_PROCESS: [&str; 2] = ["LISTEN_ADDR", "LOG_FORMAT"];

/// The one service published to the host: the HTTP edge.
const EDGE: &str = "gateway";

#[test]
fn compose_runs_every_binary_from_one_image() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    let mut images = BTreeSet::new();
    for service in stack.services.values().filter(|s| s.built) {
        images.insert(service.image.clone().unwrap_or_default());
        if service.dockerfile.as_deref() != Some("deploy/Dockerfile") {
            problems.push(format!(
                "service `{}` builds from {:?}, not deploy/Dockerfile",
                service.name, service.dockerfile
            ));
        }
        if service.binary.is_none() {
            problems.push(format!(
                "service `{}` runs {:?}, which is not one of the binaries {:?}",
                service.name,
                service.command,
                BINARIES.map(|b| b.name)
            ));
        }
    }
    if images.len() != 1 || images.contains("") {
        problems.push(format!(
            "the chirp services must all name one image, so compose builds it once; they name {images:?}"
        ));
    }
    for binary in BINARIES {
        if !stack.chirp_services().any(|(_, b)| b.name == binary.name) {
            problems.push(format!("no service runs the `{}` binary", binary.name));
        }
    }
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn compose_sets_every_required_setting() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        for setting in binary.settings().iter().filter(|s| s.is_required()) {
            if !service.env.contains_key(&setting.env) {
                problems.push(format!(
                    "service `{}` does not set {}, which `{}` requires (it has no default)",
                    service.name, setting.env, binary.name
                ));
            }
        }
    }
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn compose_sets_only_settings_the_service_reads() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        let settings = binary.settings();
        for name in service.env.keys() {
            let known = settings.iter().any(|s| &s.env == name) || LOGGER_VARIABLES.contains(&name.as_str());
            if !known {
                let reads: Vec<&str> = settings.iter().map(|s| s.env.as_str()).collect();
                problems.push(format!(
                    "service `{}` sets {name}, which `{}` does not read; it reads {reads:?} and {LOGGER_VARIABLES:?}",
                    service.name, binary.name
                ));
            }
        }
    }
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn compose_values_pass_the_services_own_parsers() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        if let Err(error) = binary.parse(&service.env) {
            problems.push(format!("service `{}` would not start: {error}", service.name));
        }
    }
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn every_address_names_a_compose_service() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        for setting in binary.settings() {
            let Some(value) = service.value(&setting) else { continue };
            let source = if service.env.contains_key(&setting.env) { "set to" } else { "left at its default" };
            if setting.env == "LISTEN_ADDR" {
                let (host, _) = split_host_port(&value);
                if host != "0.0.0.0" && host != "[::]" {
                    problems.push(format!(
                        "service `{}`: LISTEN_ADDR is {source} {value}; in a container only 0.0.0.0 or [::] is reachable from other containers",
                        service.name
                    ));
                }
                continue;
            }
            if !is_address(&setting.env) {
                continue;
            }
            for (host, port) in endpoints(&value) {
                let Some(target) = stack.services.get(host) else {
                    problems.push(format!(
                        "service `{}`: {} is {source} {value}, but `{host}` is not a compose service {:?}",
                        service.name,
                        setting.env,
                        stack.services.keys().collect::<Vec<_>>()
                    ));
                    continue;
                };
                // `TWEET_ADDR` must reach the tweet service, on the port it listens on.
                if let Some(peer) = setting.env.strip_suffix("_ADDR").map(str::to_lowercase) {
                    let runs = target.binary.map(|b| b.name);
                    if runs != Some(peer.as_str()) {
                        problems.push(format!(
                            "service `{}`: {} points at `{host}`, which runs {runs:?}, not `{peer}`",
                            service.name, setting.env
                        ));
                    } else if port.is_none() || port != stack.listen_port(target) {
                        problems.push(format!(
                            "service `{}`: {} is {value}, but `{host}` listens on port {:?}",
                            service.name,
                            setting.env,
                            stack.listen_port(target)
                        ));
                    }
                }
            }
        }
    }
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn services_start_after_what_they_use() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        for host in stack.hosts_used_by(service, binary) {
            let Some(target) = stack.services.get(&host) else { continue };
            match service.depends_on.get(&host).map(String::as_str) {
                None => problems.push(format!(
                    "service `{}` uses `{host}` but does not list it in depends_on",
                    service.name
                )),
                Some(condition) if target.binary.is_none() && condition != "service_healthy" => {
                    problems.push(format!(
                        "service `{}` waits for backend `{host}` with {condition}; a started backend is not a ready one, use service_healthy",
                        service.name
                    ));
                }
                Some(_) => {}
            }
        }
    }
    for service in stack.services.values() {
        for (target, condition) in &service.depends_on {
            match stack.services.get(target) {
                None => problems.push(format!(
                    "service `{}` depends on `{target}`, which is not a compose service",
                    service.name
                )),
                Some(t) if condition == "service_healthy" && !t.has_healthcheck => problems.push(format!(
                    "service `{}` waits for `{target}` to be healthy, but `{target}` has no healthcheck",
                    service.name
                )),
                Some(_) => {}
            }
        }
    }
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn shared_settings_agree_across_services() {
    let stack = Stack::load();
    let mut values: BTreeMap<String, BTreeMap<String, Vec<&str>>> = BTreeMap::new();
    for (service, binary) in stack.chirp_services() {
        for setting in binary.settings() {
            if PER_PROCESS.contains(&setting.env.as_str()) {
                continue;
            }
            let value = service.value(&setting).unwrap_or_default();
            values
                .entry(setting.env)
                .or_default()
                .entry(value)
                .or_default()
                .push(&service.name);
        }
    }
    let problems = values
        .into_iter()
        .filter(|(_, by_value)| by_value.len() > 1)
        .map(|(name, by_value)| {
            format!("{name} differs between services that must agree on it: {by_value:?}")
        })
        .collect();
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn only_the_gateway_is_published() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        if binary.name == EDGE {
            let port = stack.listen_port(service);
            if port.is_none() || !service.published.iter().any(|p| Some(*p) == port) {
                problems.push(format!(
                    "service `{}` listens on port {port:?} but publishes {:?}",
                    service.name, service.published
                ));
            }
        } else if !service.published.is_empty() {
            problems.push(format!(
                "service `{}` publishes {:?}; internal services are reached through `{EDGE}` only",
                service.name, service.published
            ));
        }
    }
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn every_backend_has_a_healthcheck() {
    let stack = Stack::load();
    let problems = stack
        .services
        .values()
        .filter(|s| !s.built && !s.has_healthcheck)
        .map(|s| format!("backend `{}` has no healthcheck, so nothing can wait for it to be ready", s.name))
        .collect();
    assert_no_problems("docker-compose.yml", problems);
}

#[test]
fn env_example_lists_every_setting_with_its_default() {
    let path = repo_root().join(".env.example");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let example = EnvExample::parse(&text);
    let mut problems = example.problems;
    for name in example.sections.keys() {
        if !BINARIES.iter().any(|b| b.name == name) {
            problems.push(format!("section [{name}] is not one of the binaries"));
        }
    }
    for binary in BINARIES {
        let Some(section) = example.sections.get(binary.name) else {
            problems.push(format!("no section [{}]", binary.name));
            continue;
        };
        let settings = binary.settings();
        for setting in &settings {
            match (section.get(&setting.env), &setting.default) {
                (None, _) => problems.push(format!("[{}] does not list {}", binary.name, setting.env)),
                (Some(listed), Some(default)) if listed != default => problems.push(format!(
                    "[{}] gives {}={listed}, but its default is {default}",
                    binary.name, setting.env
                )),
                _ => {}
            }
        }
        for name in section.keys() {
            if !settings.iter().any(|s| &s.env == name) {
                problems.push(format!("[{}] lists {name}, which `{}` does not read", binary.name, binary.name));
            }
        }
        if let Err(error) = binary.parse(section) {
            problems.push(format!("[{}] would not start `{}`: {error}", binary.name, binary.name));
        }
    }
    assert_no_problems(".env.example", problems);
}

fn assert_no_problems(file: &str, problems: Vec<String>) {
    if !problems.is_empty() {
        let mut message = format!("{file} is wrong in {} way(s):", problems.len());
        for problem in problems {
            let _ = write!(message, "\n  - {problem}");
        }
        panic!("{message}");
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ------------------------------------------------------------------ the Configs

#[derive(Clone, Copy)]
struct Binary {
    name: &'static str,
    command: fn() -> clap::Command,
}

/// One environment variable a `Config` reads.
struct Setting {
    env: String,
    long: String,
    /// Several default values (a list) are joined with commas, as they are written.
    default: Option<String>,
    required: bool,
}

impl Setting {
    fn is_required(&self) -> bool {
        self.required && self.default.is_none()
    }
}

impl Binary {
    fn settings(self) -> Vec<Setting> {
        (self.command)()
            .get_arguments()
            .filter_map(|arg| {
                let defaults: Vec<String> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                Some(Setting {
                    env: arg.get_env()?.to_string_lossy().into_owned(),
                    long: arg.get_long()?.to_owned(),
                    default: (!defaults.is_empty()).then(|| defaults.join(",")),
                    required: arg.is_required_set(),
                })
            })
            .collect()
    }

    /// Runs `env` through the `Config`'s own parsers (types, ranges, the
    /// secret's length…), as flags so that the environment of the test
    /// process itself cannot fill in or spoil anything.
    fn parse(self, env: &BTreeMap<String, String>) -> Result<(), String> {
        let mut args = vec![self.name.to_owned()];
        for setting in self.settings() {
            if let Some(value) = env.get(&setting.env) {
                args.push(format!("--{}={value}", setting.long));
            }
        }
        (self.command)()
            .mut_args(|arg| arg.env(None::<&'static str>))
            .try_get_matches_from(args)
            .map(drop)
            .map_err(|error| error.to_string().lines().next().unwrap_or_default().to_owned())
    }
}

/// Settings that name other hosts: peers (`TWEET_ADDR`) and backends
/// (`DATABASE_URL`, `KAFKA_BROKERS`, …). `LISTEN_ADDR` is the service's own.
fn is_address(env: &str) -> bool {
    (env.ends_with("_ADDR") && env != "LISTEN_ADDR")
        || env.ends_with("_URL")
        || env == "KAFKA_BROKERS"
        || env == "CQL_NODES"
}

/// The `(host, port)` of every endpoint an address names: `host:port`, a URL
/// such as `postgres://user:password@host:5432/db`, or a comma-separated list.
fn endpoints(value: &str) -> Vec<(&str, Option<u16>)> {
    value
        .split(',')
        .map(str::trim)
        .filter(|endpoint| !endpoint.is_empty())
        .map(|endpoint| {
            let authority = match endpoint.split_once("://") {
                Some((_, rest)) => rest.split(['/', '?']).next().unwrap_or(rest),
                None => endpoint,
            };
            let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
            split_host_port(host_port)
        })
        .collect()
}

fn split_host_port(value: &str) -> (&str, Option<u16>) {
    match value.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (value, None),
    }
}

// ------------------------------------------------------------------ the compose file

/// The compose file, reduced to what the checks need.
struct Stack {
    services: BTreeMap<String, Service>,
}

struct Service {
    name: String,
    /// Built from a Dockerfile of this repository: a chirp service.
    built: bool,
    dockerfile: Option<String>,
    image: Option<String>,
    command: Option<String>,
    /// The chirp binary the service runs, if `command` names one.
    binary: Option<Binary>,
    /// `environment`, with `${VAR:-default}` resolved to the default, as
    /// `docker compose up` does when nothing sets `VAR`.
    env: BTreeMap<String, String>,
    /// Container ports published to the host.
    published: Vec<u16>,
    /// `depends_on`: service name to condition.
    depends_on: BTreeMap<String, String>,
    has_healthcheck: bool,
}

impl Stack {
    fn load() -> Self {
        let path = repo_root().join("docker-compose.yml");
        let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mut value: serde_yaml::Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("docker-compose.yml is not YAML: {e}"));
        value
            .apply_merge()
            .unwrap_or_else(|e| panic!("docker-compose.yml: bad `<<` merge: {e}"));
        let file: ComposeFile = serde_yaml::from_value(value)
            .unwrap_or_else(|e| panic!("docker-compose.yml has an unexpected shape: {e}"));
        let services = file
            .services
            .into_iter()
            .map(|(name, raw)| {
                let service = Service::new(&name, raw).unwrap_or_else(|e| panic!("docker-compose.yml: service `{name}`: {e}"));
                (name, service)
            })
            .collect();
        Self { services }
    }

    fn chirp_services(&self) -> impl Iterator<Item = (&Service, Binary)> {
        self.services.values().filter_map(|s| Some((s, s.binary?)))
    }

    /// The port a chirp service listens on, from its `LISTEN_ADDR`.
    fn listen_port(&self, service: &Service) -> Option<u16> {
        let setting = service.binary?.settings().into_iter().find(|s| s.env == "LISTEN_ADDR")?;
        split_host_port(&service.value(&setting)?).1
    }

    /// The other compose services a chirp service's addresses point at.
    fn hosts_used_by(&self, service: &Service, binary: Binary) -> BTreeSet<String> {
        binary
            .settings()
            .iter()
            .filter(|s| is_address(&s.env))
            .filter_map(|s| service.value(s))
            .flat_map(|value| {
                endpoints(&value)
                    .into_iter()
                    .map(|(host, _)| host.to_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|host| *host != service.name && self.services.contains_key(host))
            .collect()
    }
}

impl Service {
    fn new(name: &str, raw: RawService) -> Result<Self, String> {
        let command = raw.command.map(|c| match c {
            StringOrList::One(line) => line.split_whitespace().next().unwrap_or_default().to_owned(),
            StringOrList::Many(words) => words.into_iter().next().unwrap_or_default(),
        });
        let dockerfile = match &raw.build {
            Some(RawBuild::Full { dockerfile, .. }) => Some(dockerfile.clone().unwrap_or_else(|| "Dockerfile".to_owned())),
            Some(RawBuild::Context(_)) => Some("Dockerfile".to_owned()),
            None => None,
        };
        let built = raw.build.is_some();
        Ok(Self {
            name: name.to_owned(),
            built,
            dockerfile,
            image: raw.image,
            binary: BINARIES
                .into_iter()
                .find(|b| built && command.as_deref() == Some(b.name)),
            command,
            env: raw.environment.resolve()?,
            published: raw.ports.into_iter().map(RawPort::container_port).collect::<Result<_, _>>()?,
            depends_on: match raw.depends_on {
                RawDependsOn::List(names) => names.into_iter().map(|n| (n, "service_started".to_owned())).collect(),
                RawDependsOn::Map(map) => map.into_iter().map(|(n, d)| (n, d.condition)).collect(),
            },
            has_healthcheck: raw.healthcheck.is_some_and(|h| {
                let disabled = matches!(&h.test, Some(StringOrList::Many(words)) if words.first().is_some_and(|w| w == "NONE"));
                !h.disable && h.test.is_some() && !disabled
            }),
        })
    }

    /// What the service gets for `setting`: the compose value, else the default.
    fn value(&self, setting: &Setting) -> Option<String> {
        self.env.get(&setting.env).cloned().or_else(|| setting.default.clone())
    }
}

#[derive(Deserialize)]
struct ComposeFile {
    services: BTreeMap<String, RawService>,
}

#[derive(Deserialize)]
struct RawService {
    image: Option<String>,
    build: Option<RawBuild>,
    command: Option<StringOrList>,
    #[serde(default)]
    environment: RawEnvironment,
    #[serde(default)]
    ports: Vec<RawPort>,
    #[serde(default)]
    depends_on: RawDependsOn,
    healthcheck: Option<RawHealthcheck>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBuild {
    Context(String),
    Full { dockerfile: Option<String> },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEnvironment {
    Map(BTreeMap<String, Option<serde_yaml::Value>>),
    List(Vec<String>),
}

impl Default for RawEnvironment {
    fn default() -> Self {
        Self::Map(BTreeMap::new())
    }
}

impl RawEnvironment {
    fn resolve(self) -> Result<BTreeMap<String, String>, String> {
        let pairs: Vec<(String, Option<String>)> = match self {
            Self::Map(map) => map
                .into_iter()
                .map(|(name, value)| {
                    let value = match value {
                        None | Some(serde_yaml::Value::Null) => None,
                        Some(serde_yaml::Value::String(s)) => Some(s),
                        Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
                        Some(serde_yaml::Value::Bool(b)) => Some(b.to_string()),
                        Some(other) => return Err(format!("{name} is not a scalar: {other:?}")),
                    };
                    Ok((name, value))
                })
                .collect::<Result<_, _>>()?,
            Self::List(lines) => lines
                .into_iter()
                .map(|line| match line.split_once('=') {
                    Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                    None => (line, None),
                })
                .collect(),
        };
        pairs
            .into_iter()
            .map(|(name, value)| {
                let value = value.ok_or_else(|| {
                    format!("{name} has no value, so compose would copy it from the caller's shell; give it one")
                })?;
                let value = interpolate(&value).map_err(|e| format!("{name}: {e}"))?;
                Ok((name, value))
            })
            .collect()
    }
}

/// Resolves compose's `${VAR:-default}` and `${VAR-default}` to the default,
/// and `$$` to `$`. A bare `${VAR}` or `$VAR` is refused: the file must work
/// without a `.env` or exported variables.
fn interpolate(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some(body_and_rest) = rest.strip_prefix('{') else {
            return Err(format!("`{raw}` uses a variable without a default; write ${{VAR:-default}}"));
        };
        let Some((body, after)) = body_and_rest.split_once('}') else {
            return Err(format!("`{raw}` has an unclosed ${{"));
        };
        let default = body
            .split_once(":-")
            .or_else(|| body.split_once('-'))
            .map(|(_, default)| default)
            .ok_or_else(|| format!("`{raw}` uses ${{{body}}} without a default; write ${{VAR:-default}}"))?;
        out.push_str(default);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPort {
    Long { target: u16 },
    Number(u16),
    Short(String),
}

impl RawPort {
    /// `"8080"`, `"8080:8080"`, `"127.0.0.1:9092:29092/tcp"` or `{ target: 8080 }`:
    /// the container side is what the service listens on.
    fn container_port(self) -> Result<u16, String> {
        match self {
            Self::Long { target } | Self::Number(target) => Ok(target),
            Self::Short(spec) => {
                let without_protocol = spec.split('/').next().unwrap_or_default();
                let container = without_protocol.rsplit(':').next().unwrap_or_default();
                container
                    .parse()
                    .map_err(|_| format!("port `{spec}`: expected one container port"))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawDependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, RawDependency>),
}

impl Default for RawDependsOn {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

#[derive(Deserialize)]
struct RawDependency {
    condition: String,
}

#[derive(Deserialize)]
struct RawHealthcheck {
    test: Option<StringOrList>,
    #[serde(default)]
    disable: bool,
}

// ------------------------------------------------------------------ .env.example

/// `.env.example`: one section per binary, opened by a `# [name] …` line,
/// holding `NAME=value` lines, commented out (`# NAME=value`) or not.
struct EnvExample {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    problems: Vec<String>,
}

impl EnvExample {
    fn parse(text: &str) -> Self {
        let mut example = Self { sections: BTreeMap::new(), problems: Vec::new() };
        let mut current: Option<String> = None;
        for (index, line) in text.lines().enumerate() {
            let uncommented = line.strip_prefix('#').map_or(line, |l| l.strip_prefix(' ').unwrap_or(l));
            if let Some(header) = uncommented.strip_prefix('[') {
                let name = header.split(']').next().unwrap_or_default().to_owned();
                if example.sections.insert(name.clone(), BTreeMap::new()).is_some() {
                    example.problems.push(format!("section [{name}] appears twice"));
                }
                current = Some(name);
                continue;
            }
            let Some((name, value)) = uncommented.split_once('=') else { continue };
            let is_variable = name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !is_variable {
                continue;
            }
            let line_number = index + 1;
            match &current {
                None => example.problems.push(format!("line {line_number}: {name} is outside any [service] section")),
                Some(section) => {
                    let entries = example.sections.entry(section.clone()).or_default();
                    if entries.insert(name.to_owned(), value.to_owned()).is_some() {
                        example.problems.push(format!("line {line_number}: {name} appears twice in [{section}]"));
                    }
                }
            }
        }
        example
    }
}
