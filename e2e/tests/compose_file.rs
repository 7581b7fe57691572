//! Checks `docker-compose.yml`, `.env.example` and the observability stack's
//! files against the services' own code, without Docker.
//!
//! The compose file wires five binaries to four backends and three
//! observability tools through environment variables and mounted files, and
//! nothing else notices a mistake there until a container fails to start, or
//! worse, starts and quietly talks to its own 127.0.0.1, or a dashboard stays
//! empty. Each service's clap `Config` already knows every variable it reads
//! (see `common/config_vars.rs`), and the services' sources name every metric
//! they record, so these tests hold the deployment files to the code and the
//! two cannot drift apart. A failure lists everything wrong at once, naming
//! the service and the variable.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

use common::config_vars::{
    BINARIES, Binary, Kind, Setting, disagreements, endpoints, is_every_interface, split_host_port,
};
use common::{assert_no_problems, read_repo_file, repo_path};

/// The only chirp service published to the host: the HTTP edge.
const EDGE: &str = "gateway";
/// The load balancer in front of the gateway's replicas, published in its stead.
const LOAD_BALANCER: &str = "lb";

const COMPOSE_FILE: &str = "docker-compose.yml";
const ENV_EXAMPLE: &str = ".env.example";
const DASHBOARD: &str = "deploy/grafana/dashboards/chirp.json";

/// The images of the observability tools, by the start of their name.
const PROMETHEUS_IMAGE: &str = "prom/prometheus";
const GRAFANA_IMAGE: &str = "grafana/grafana";

/// Where the images look for their configuration unless told otherwise.
const PROMETHEUS_CONFIG: &str = "/etc/prometheus/prometheus.yml";
const GRAFANA_PROVISIONING: &str = "/etc/grafana/provisioning";

#[test]
fn compose_runs_every_binary_from_one_image() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    let mut images = BTreeSet::new();
    for service in stack.services.values().filter(|s| s.built) {
        images.insert(service.image.as_deref().unwrap_or("(none)"));
        if service.dockerfile.as_deref() != Some("deploy/Dockerfile") {
            problems.push(format!(
                "service `{}` builds from {}, not deploy/Dockerfile",
                service.name,
                service.dockerfile.as_deref().unwrap_or("(none)")
            ));
        }
        if service.binary.is_none() {
            problems.push(format!(
                "service `{}` runs `{}`, which is not one of the binaries {:?}",
                service.name,
                service
                    .command
                    .first()
                    .map_or("(no command)", String::as_str),
                BINARIES.map(|b| b.name)
            ));
        }
    }
    if images.len() != 1 || images.contains("(none)") {
        problems.push(format!(
            "the chirp services must all name one image, so that compose builds it once; they name {images:?}"
        ));
    }
    for binary in BINARIES {
        if !stack.chirp_services().any(|(_, b)| b.name == binary.name) {
            problems.push(format!("no service runs the `{}` binary", binary.name));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
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
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn compose_sets_only_settings_the_service_reads() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        for name in service.env.keys().filter(|name| !binary.reads(name)) {
            let reads: Vec<String> = binary.settings().into_iter().map(|s| s.env).collect();
            problems.push(format!(
                "service `{}` sets {name}, which `{}` does not read; it reads {reads:?} and RUST_LOG",
                service.name, binary.name
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn compose_values_pass_the_services_own_parsers() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        if let Err(error) = binary.parse(&service.env) {
            problems.push(format!(
                "service `{}` would not start: {error}",
                service.name
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

/// `LISTEN_ADDR` and `METRICS_ADDR`: what a service serves must be reachable
/// from the other containers (the gateway's peers, Prometheus).
#[test]
fn services_listen_on_every_interface() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        for setting in binary.settings() {
            if setting.kind() != Kind::Listener {
                continue;
            }
            let Some(value) = service.value(&setting) else {
                continue; // not served at all
            };
            if !is_every_interface(split_host_port(&value).0) {
                problems.push(format!(
                    "service `{}`: {} is {value}; in a container only 0.0.0.0 or [::] can be reached from other containers",
                    service.name, setting.env
                ));
            }
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn every_address_names_a_compose_service() {
    let stack = Stack::load();
    let problems = stack
        .addresses()
        .into_iter()
        .filter(|a| !stack.services.contains_key(&a.host))
        .map(|a| {
            let how = if a.defaulted {
                "left at its default"
            } else {
                "set to"
            };
            let hint = match a.host.as_str() {
                "127.0.0.1" | "localhost" => ", and in a container that is the container itself",
                _ => "",
            };
            format!(
                "service `{}`: {} is {how} {}, but `{}` is not a compose service{hint}",
                a.service.name, a.setting.env, a.value, a.host
            )
        })
        .collect();
    assert_no_problems(COMPOSE_FILE, problems);
}

/// `TWEET_ADDR` must reach a service that runs `tweet`, on the port it listens on.
#[test]
fn peer_addresses_reach_that_peer_on_its_port() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for address in stack.addresses() {
        let Some(peer) = address.setting.peer() else {
            continue;
        };
        let Some(target) = stack.services.get(&address.host) else {
            continue; // reported by every_address_names_a_compose_service
        };
        let runs = target.binary.map(|b| b.name);
        let listens_on = target.port("LISTEN_ADDR");
        if runs != Some(peer.as_str()) {
            problems.push(format!(
                "service `{}`: {} points at `{}`, which runs {}, not `{peer}`",
                address.service.name,
                address.setting.env,
                address.host,
                runs.map_or("no chirp binary".to_owned(), |b| format!("`{b}`"))
            ));
        } else if address.port.is_none() || address.port != listens_on {
            problems.push(format!(
                "service `{}`: {} is {}, but `{}` listens on port {}",
                address.service.name,
                address.setting.env,
                address.value,
                address.host,
                listens_on.map_or("(none)".to_owned(), |p| p.to_string())
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

/// What a service needs must be up before it starts. Where it sends its
/// traces need not: spans are exported best effort, and a stack whose
/// tracing is down must still serve.
#[test]
fn services_start_after_what_they_use() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for address in stack.addresses() {
        let (service, host) = (address.service, &address.host);
        if address.setting.kind() != Kind::Dependency {
            continue;
        }
        let Some(target) = stack.services.get(host).filter(|_| *host != service.name) else {
            continue;
        };
        match service.depends_on.get(host).map(String::as_str) {
            None => problems.push(format!(
                "service `{}` uses `{host}` ({}) but does not list it in depends_on",
                service.name, address.setting.env
            )),
            Some(condition) if !target.built && condition != "service_healthy" => {
                problems.push(format!(
                    "service `{}` waits for backend `{host}` with {condition}; a started backend is not a ready one, use service_healthy",
                    service.name
                ));
            }
            Some(_) => {}
        }
    }
    for service in stack.services.values() {
        for (target, condition) in &service.depends_on {
            match stack.services.get(target) {
                None => problems.push(format!(
                    "service `{}` depends on `{target}`, which is not a compose service",
                    service.name
                )),
                Some(t) if condition == "service_healthy" && !t.has_healthcheck => {
                    problems.push(format!(
                        "service `{}` waits for `{target}` to be healthy, but `{target}` has no healthcheck",
                        service.name
                    ));
                }
                Some(_) => {}
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn shared_settings_agree_across_services() {
    let stack = Stack::load();
    let processes = stack
        .chirp_services()
        .map(|(service, binary)| (service.name.as_str(), binary, &service.env));
    assert_no_problems(COMPOSE_FILE, disagreements(processes));
}

#[test]
fn only_the_gateway_is_published() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, binary) in stack.chirp_services() {
        if binary.name == EDGE {
            let port = service.port("LISTEN_ADDR");
            // Published itself, or through the load balancer in front of its replicas.
            let balanced = stack
                .services
                .get(LOAD_BALANCER)
                .is_some_and(|lb| port.is_some_and(|p| lb.published.contains(&p)));
            if !balanced && !port.is_some_and(|port| service.published.contains(&port)) {
                problems.push(format!(
                    "service `{}` listens on port {} but publishes {:?}",
                    service.name,
                    port.map_or("(none)".to_owned(), |p| p.to_string()),
                    service.published
                ));
            }
        } else if !service.published.is_empty() {
            problems.push(format!(
                "service `{}` publishes {:?}; clients reach the internal services through `{EDGE}` only",
                service.name, service.published
            ));
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

#[test]
fn every_backend_has_a_healthcheck() {
    let stack = Stack::load();
    let problems = stack
        .services
        .values()
        .filter(|s| !s.built && !s.has_healthcheck)
        .map(|s| {
            format!(
                "`{}` has no healthcheck, so nothing can wait until it is ready",
                s.name
            )
        })
        .collect();
    assert_no_problems(COMPOSE_FILE, problems);
}

/// A service without metrics is a blank on the dashboard, and one without
/// traces is a hole in every trace that passes through it.
#[test]
fn every_service_is_observed() {
    let stack = Stack::load();
    let mut problems = Vec::new();
    for (service, _) in stack.chirp_services() {
        for (env, why) in [
            ("METRICS_ADDR", "Prometheus has nothing to scrape"),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "its spans are missing from every trace through it",
            ),
        ] {
            if !service.env.contains_key(env) {
                problems.push(format!(
                    "service `{}` does not set {env}, so {why}",
                    service.name
                ));
            }
        }
    }
    assert_no_problems(COMPOSE_FILE, problems);
}

/// Reads the configuration Prometheus really gets: the file mounted where
/// its `--config.file` points.
#[test]
fn prometheus_scrapes_every_service_on_its_metrics_port() {
    let stack = Stack::load();
    let prometheus = stack.running(PROMETHEUS_IMAGE);
    let config = prometheus
        .flag("--config.file")
        .unwrap_or_else(|| PROMETHEUS_CONFIG.to_owned());
    let path = prometheus.host_path(&config);
    let scraped: PrometheusConfig = load_yaml(&path);
    let targets = scraped.targets();
    let file = path.display().to_string();

    let mut problems = Vec::new();
    for target in &targets {
        if !stack.services.contains_key(&target.host) {
            problems.push(format!(
                "job `{}` scrapes `{}`, which is not a compose service",
                target.job, target.host
            ));
        }
        if target.metrics_path != "/metrics" {
            problems.push(format!(
                "job `{}` scrapes {}, but the services serve /metrics",
                target.job, target.metrics_path
            ));
        }
    }
    for (service, _) in stack.chirp_services() {
        let Some(port) = service.port("METRICS_ADDR") else {
            continue; // reported by every_service_is_observed
        };
        let scraped = |t: &&Target| t.host == service.name;
        if !targets.iter().filter(scraped).any(|t| t.port == Some(port)) {
            let ports: Vec<Option<u16>> = targets.iter().filter(scraped).map(|t| t.port).collect();
            problems.push(format!(
                "no job scrapes `{}` on port {port}, where its METRICS_ADDR serves (it is scraped on {ports:?})",
                service.name
            ));
        }
    }
    assert_no_problems(&file, problems);
}

/// Follows Grafana's mounts from its provisioning directory to the
/// dashboard files, and from the dashboard's panels to the data sources.
#[test]
fn grafana_provisions_the_dashboard_and_its_data_sources() {
    let stack = Stack::load();
    let grafana = stack.running(GRAFANA_IMAGE);
    let provisioning = grafana
        .env
        .get("GF_PATHS_PROVISIONING")
        .cloned()
        .unwrap_or_else(|| GRAFANA_PROVISIONING.to_owned());
    let mut problems = Vec::new();

    let mut data_sources = BTreeSet::new();
    for path in yaml_files(&grafana.host_path(&format!("{provisioning}/datasources"))) {
        let file: DataSourceFile = load_yaml(&path);
        for source in file.datasources {
            for (host, _) in source.url.as_deref().map(endpoints).unwrap_or_default() {
                if !stack.services.contains_key(host) {
                    problems.push(format!(
                        "data source `{}` ({}) points at `{host}`, which is not a compose service",
                        source.name,
                        path.display()
                    ));
                }
            }
            data_sources.extend(source.uid);
        }
    }

    let mut dashboards = BTreeSet::new();
    for path in yaml_files(&grafana.host_path(&format!("{provisioning}/dashboards"))) {
        let file: DashboardProviderFile = load_yaml(&path);
        for provider in file.providers {
            let folder = grafana.host_path(&provider.options.path);
            let Ok(entries) = fs::read_dir(repo_path(&folder)) else {
                problems.push(format!(
                    "dashboard provider `{}` ({}) reads {}, which Grafana's mounts leave empty ({} on this side)",
                    provider.name,
                    path.display(),
                    provider.options.path,
                    folder.display()
                ));
                continue;
            };
            let json = entries
                .filter_map(Result::ok)
                .map(|e| folder.join(e.file_name()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"));
            dashboards.extend(json);
        }
    }
    if !dashboards.contains(Path::new(DASHBOARD)) {
        problems.push(format!(
            "no dashboard provider loads {DASHBOARD}; they load {dashboards:?}"
        ));
    }
    if let Some(home) = grafana.env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
        && grafana.host_path(home) != Path::new(DASHBOARD)
    {
        problems.push(format!(
            "the home dashboard is {home}, which is not {DASHBOARD} inside the container"
        ));
    }

    let mut used = BTreeSet::new();
    walk_json(&load_dashboard(), &mut |key, value| {
        if key == "datasource"
            && let Some(uid) = value.get("uid").and_then(|u| u.as_str())
        {
            used.insert(uid.to_owned());
        }
    });
    for uid in used.difference(&data_sources) {
        problems.push(format!(
            "{DASHBOARD} queries data source `{uid}`, but the provisioned ones are {data_sources:?}"
        ));
    }
    assert_no_problems("deploy/grafana", problems);
}

/// A panel that plots a name no service records stays empty without an
/// error anywhere; this is the only place that notices.
#[test]
fn the_dashboard_plots_only_metrics_the_services_record() {
    let recorded = recorded_metrics();
    let mut expressions = Vec::new();
    walk_json(&load_dashboard(), &mut |key, value| {
        if key == "expr"
            && let Some(expr) = value.as_str()
        {
            expressions.push(expr.to_owned());
        }
    });
    let mut problems = Vec::new();
    if expressions.is_empty() {
        problems.push("no panel has a query (`expr`)".to_owned());
    }
    for expr in &expressions {
        for name in metric_names(expr) {
            // A histogram is exported as three series named after it.
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| recorded.contains(*base))
                .unwrap_or(name);
            if !recorded.contains(base) {
                problems.push(format!(
                    "`{name}` is recorded by no service (they record {recorded:?}), in: {expr}"
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert_no_problems(DASHBOARD, problems);
}

#[test]
fn env_example_lists_every_setting_with_its_default() {
    let example = EnvExample::load();
    let mut problems = example.problems;
    for name in example.sections.keys() {
        if Binary::named(name).is_none() {
            problems.push(format!("section [{name}] is not one of the binaries"));
        }
    }
    for binary in BINARIES {
        let name = binary.name;
        let Some(section) = example.sections.get(name) else {
            problems.push(format!("there is no section [{name}]"));
            continue;
        };
        let settings = binary.settings();
        for setting in &settings {
            match (section.get(&setting.env), &setting.default) {
                (None, _) => problems.push(format!("[{name}] does not list {}", setting.env)),
                (Some(listed), Some(default)) if listed != default => problems.push(format!(
                    "[{name}] gives {}={listed}, but the default is {default}",
                    setting.env
                )),
                _ => {}
            }
        }
        for variable in section.keys() {
            if !settings.iter().any(|s| &s.env == variable) {
                problems.push(format!(
                    "[{name}] lists {variable}, which `{name}` does not read"
                ));
            }
        }
        if let Err(error) = binary.parse(section) {
            problems.push(format!("[{name}] would not start `{name}`: {error}"));
        }
    }
    assert_no_problems(ENV_EXAMPLE, problems);
}

// ----------------------------------------------------------------- the compose file

/// The compose file, reduced to what the checks need.
struct Stack {
    services: BTreeMap<String, Service>,
}

struct Service {
    name: String,
    /// Built from this repository rather than pulled: a chirp service.
    built: bool,
    dockerfile: Option<String>,
    image: Option<String>,
    /// `command`, word by word; its first word is the program a chirp
    /// service runs.
    command: Vec<String>,
    /// The chirp binary the service runs, if `command` names one.
    binary: Option<Binary>,
    /// `environment`, with `${VAR:-default}` resolved to the default, as
    /// `docker compose up` does when nothing sets `VAR`.
    env: BTreeMap<String, String>,
    /// Container ports published to the host.
    published: Vec<u16>,
    /// Files and directories of the repository mounted into the container.
    mounts: Vec<Mount>,
    /// `depends_on`: service name to condition.
    depends_on: BTreeMap<String, String>,
    has_healthcheck: bool,
}

struct Mount {
    /// Relative to the repository root, where the compose file is.
    source: PathBuf,
    target: PathBuf,
}

/// One endpoint that an address setting of a chirp service names.
struct Address<'a> {
    service: &'a Service,
    setting: Setting,
    /// The whole value, as the service gets it.
    value: String,
    /// Compose leaves the setting at the `Config`'s default (127.0.0.1…).
    defaulted: bool,
    host: String,
    port: Option<u16>,
}

impl Stack {
    fn load() -> Self {
        let text = read_repo_file(COMPOSE_FILE);
        let mut value: serde_yaml::Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{COMPOSE_FILE} is not YAML: {e}"));
        value
            .apply_merge()
            .unwrap_or_else(|e| panic!("{COMPOSE_FILE}: a `<<` merge is wrong: {e}"));
        let file: ComposeFile = serde_yaml::from_value(value)
            .unwrap_or_else(|e| panic!("{COMPOSE_FILE} has an unexpected shape: {e}"));
        let services = file
            .services
            .into_iter()
            .map(|(name, raw)| {
                let service = Service::new(&name, raw)
                    .unwrap_or_else(|e| panic!("{COMPOSE_FILE}: service `{name}`: {e}"));
                (name, service)
            })
            .collect();
        Self { services }
    }

    fn chirp_services(&self) -> impl Iterator<Item = (&Service, Binary)> {
        self.services.values().filter_map(|s| Some((s, s.binary?)))
    }

    /// The one service running `image` (any tag).
    fn running(&self, image: &str) -> &Service {
        let mut running = self.services.values().filter(|s| {
            s.image
                .as_deref()
                .is_some_and(|i| i.split(':').next() == Some(image))
        });
        match (running.next(), running.next()) {
            (Some(service), None) => service,
            _ => panic!("{COMPOSE_FILE}: expected exactly one service running {image}"),
        }
    }

    /// Every host that a chirp service's dependencies and telemetry sinks name.
    fn addresses(&self) -> Vec<Address<'_>> {
        let mut addresses = Vec::new();
        for (service, binary) in self.chirp_services() {
            for setting in binary.settings() {
                if !matches!(setting.kind(), Kind::Dependency | Kind::TelemetrySink) {
                    continue;
                }
                let Some(value) = service.value(&setting) else {
                    continue;
                };
                for (host, port) in endpoints(&value) {
                    addresses.push(Address {
                        service,
                        setting: setting.clone(),
                        value: value.clone(),
                        defaulted: !service.env.contains_key(&setting.env),
                        host: host.to_owned(),
                        port,
                    });
                }
            }
        }
        addresses
    }
}

impl Service {
    fn new(name: &str, raw: RawService) -> Result<Self, String> {
        let built = raw.build.is_some();
        let command = raw
            .command
            .map(StringOrList::into_words)
            .unwrap_or_default();
        let binary = BINARIES
            .into_iter()
            .find(|b| built && command.first().map(String::as_str) == Some(b.name));
        let published = raw.ports.into_iter().map(RawPort::container_port);
        Ok(Self {
            name: name.to_owned(),
            built,
            dockerfile: raw.build.map(RawBuild::into_dockerfile),
            image: raw.image,
            command,
            binary,
            env: raw.environment.resolve()?,
            published: published.collect::<Result<_, _>>()?,
            mounts: raw
                .volumes
                .into_iter()
                .filter_map(RawVolume::into_mount)
                .collect(),
            depends_on: raw.depends_on.into_conditions(),
            has_healthcheck: raw
                .healthcheck
                .as_ref()
                .is_some_and(RawHealthcheck::is_enabled),
        })
    }

    /// What the service gets for `setting`: the compose value, else the default.
    fn value(&self, setting: &Setting) -> Option<String> {
        let value = self.env.get(&setting.env);
        value.cloned().or_else(|| setting.default.clone())
    }

    /// The port a chirp service serves on, from `LISTEN_ADDR` or `METRICS_ADDR`.
    fn port(&self, env: &str) -> Option<u16> {
        self.binary?.port(env, &self.env)
    }

    /// The value of `--name=value` in `command`.
    fn flag(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        let value = self.command.iter().find_map(|w| w.strip_prefix(&prefix));
        value.map(str::to_owned)
    }

    /// Where in this repository the container finds `path`: through the
    /// innermost mount that holds it.
    fn host_path(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        self.mounts
            .iter()
            .filter_map(|m| Some((m, path.strip_prefix(&m.target).ok()?)))
            .max_by_key(|(m, _)| m.target.components().count())
            .map(|(m, rest)| match rest.as_os_str().is_empty() {
                true => m.source.clone(),
                false => m.source.join(rest),
            })
            .unwrap_or_else(|| {
                panic!(
                    "{COMPOSE_FILE}: service `{}` mounts nothing at {}",
                    self.name,
                    path.display()
                )
            })
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
    volumes: Vec<RawVolume>,
    #[serde(default)]
    depends_on: RawDependsOn,
    healthcheck: Option<RawHealthcheck>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBuild {
    Full { dockerfile: Option<String> },
    Context(serde::de::IgnoredAny),
}

impl RawBuild {
    fn into_dockerfile(self) -> String {
        match self {
            Self::Full {
                dockerfile: Some(dockerfile),
            } => dockerfile,
            _ => "Dockerfile".to_owned(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn into_words(self) -> Vec<String> {
        match self {
            Self::One(line) => line.split_whitespace().map(str::to_owned).collect(),
            Self::Many(words) => words,
        }
    }
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
                    format!("{name} has no value, so compose would take it from the caller's shell")
                })?;
                let value = interpolate(&value).map_err(|e| format!("{name}: {e}"))?;
                Ok((name, value))
            })
            .collect()
    }
}

/// Resolves compose's `${VAR:-default}` and `${VAR-default}` to the default,
/// and `$$` to `$`. A variable without a default is refused: the file must
/// work without a `.env` or exported variables.
fn interpolate(raw: &str) -> Result<String, String> {
    let no_default = || {
        format!(
            "`{raw}` has no default, so without a .env the service gets an empty value; write ${{VAR:-…}}"
        )
    };
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
        let (body, after) = rest
            .strip_prefix('{')
            .and_then(|braced| braced.split_once('}'))
            .ok_or_else(no_default)?;
        let (_, default) = body
            .split_once(":-")
            .or_else(|| body.split_once('-'))
            .ok_or_else(no_default)?;
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
    /// The container side of `"8080"`, `"8080:8080"`,
    /// `"127.0.0.1:9092:29092/tcp"` or `{ target: 8080 }`.
    fn container_port(self) -> Result<u16, String> {
        match self {
            Self::Long { target } | Self::Number(target) => Ok(target),
            Self::Short(spec) => {
                let without_protocol = spec.split('/').next().unwrap_or_default();
                let container = without_protocol.rsplit(':').next().unwrap_or_default();
                container
                    .parse()
                    .map_err(|_| format!("port `{spec}`: expected a single container port"))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVolume {
    /// `./host/path:/container/path[:ro]`, or `name:/path` for a named volume.
    Short(String),
    Long {
        source: Option<String>,
        target: String,
    },
}

impl RawVolume {
    /// A bind mount of a path in the repository; named volumes are `None`.
    fn into_mount(self) -> Option<Mount> {
        let (source, target) = match self {
            Self::Short(spec) => {
                let mut parts = spec.split(':');
                let source = parts.next()?.to_owned();
                (source, parts.next()?.to_owned())
            }
            Self::Long { source, target } => (source?, target),
        };
        let source = source.strip_prefix("./").or_else(|| {
            let relative = source.starts_with("../") || source == ".";
            relative.then_some(source.as_str())
        })?;
        Some(Mount {
            source: PathBuf::from(source),
            target: PathBuf::from(target),
        })
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

impl RawDependsOn {
    fn into_conditions(self) -> BTreeMap<String, String> {
        match self {
            Self::List(names) => {
                let started = |name| (name, "service_started".to_owned());
                names.into_iter().map(started).collect()
            }
            Self::Map(map) => map
                .into_iter()
                .map(|(name, d)| (name, d.condition))
                .collect(),
        }
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

impl RawHealthcheck {
    fn is_enabled(&self) -> bool {
        let test = match &self.test {
            Some(StringOrList::One(line)) => line.split_whitespace().next(),
            Some(StringOrList::Many(words)) => words.first().map(String::as_str),
            None => None,
        };
        !self.disable && test.is_some_and(|word| word != "NONE")
    }
}

// ----------------------------------------------------------------- Prometheus

/// `prometheus.yml`, reduced to where it scrapes.
#[derive(Deserialize)]
struct PrometheusConfig {
    #[serde(default)]
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Deserialize)]
struct ScrapeConfig {
    job_name: String,
    metrics_path: Option<String>,
    #[serde(default)]
    static_configs: Vec<StaticConfig>,
    #[serde(default)]
    dns_sd_configs: Vec<DnsSdConfig>,
}

#[derive(Deserialize)]
struct StaticConfig {
    targets: Vec<String>,
}

/// Every address a name resolves to, on `port`: how one job scrapes all
/// replicas of a compose service.
#[derive(Deserialize)]
struct DnsSdConfig {
    names: Vec<String>,
    /// Unset for SRV records, which carry their own port.
    port: Option<u16>,
}

/// One host a job scrapes.
struct Target {
    job: String,
    host: String,
    port: Option<u16>,
    metrics_path: String,
}

impl PrometheusConfig {
    fn targets(self) -> Vec<Target> {
        let mut targets = Vec::new();
        for job in self.scrape_configs {
            let metrics_path = job.metrics_path.unwrap_or_else(|| "/metrics".to_owned());
            let statics = job.static_configs.iter().flat_map(|c| &c.targets);
            let statics = statics.map(|t| {
                let (host, port) = split_host_port(t);
                (host.to_owned(), port)
            });
            let discovered = job
                .dns_sd_configs
                .iter()
                .flat_map(|c| c.names.iter().map(|name| (name.clone(), c.port)));
            for (host, port) in statics.chain(discovered).collect::<Vec<_>>() {
                targets.push(Target {
                    job: job.job_name.clone(),
                    host,
                    port,
                    metrics_path: metrics_path.clone(),
                });
            }
        }
        targets
    }
}

// ----------------------------------------------------------------- Grafana

#[derive(Deserialize)]
struct DataSourceFile {
    #[serde(default)]
    datasources: Vec<DataSource>,
}

#[derive(Deserialize)]
struct DataSource {
    name: String,
    uid: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct DashboardProviderFile {
    #[serde(default)]
    providers: Vec<DashboardProvider>,
}

#[derive(Deserialize)]
struct DashboardProvider {
    name: String,
    options: DashboardProviderOptions,
}

#[derive(Deserialize)]
struct DashboardProviderOptions {
    path: String,
}

fn load_dashboard() -> serde_json::Value {
    serde_json::from_str(&read_repo_file(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Calls `visit` with every key and value of every object in `value`.
fn walk_json(value: &serde_json::Value, visit: &mut impl FnMut(&str, &serde_json::Value)) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                visit(key, value);
                walk_json(value, visit);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| walk_json(v, visit)),
        _ => {}
    }
}

/// The `chirp_…` names in a PromQL expression.
fn metric_names(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("chirp_"))
}

/// Every metric name the services' code (`services/*/src`, not their
/// tests) spells out, as a `"chirp_…"` string literal.
fn recorded_metrics() -> BTreeSet<String> {
    fn visit(dir: &Path, names: &mut BTreeSet<String>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.is_dir() {
                visit(&path, names);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).unwrap_or_default();
                for (at, _) in text.match_indices("\"chirp_") {
                    let name = text[at + 1..].split('"').next().unwrap_or_default();
                    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        names.insert(name.to_owned());
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::new();
    let services = repo_path("services");
    let crates = fs::read_dir(&services)
        .unwrap_or_else(|e| panic!("read {}: {e}", services.display()))
        .filter_map(Result::ok);
    for source in crates.map(|c| c.path().join("src")).filter(|s| s.is_dir()) {
        visit(&source, &mut names);
    }
    names
}

/// The YAML files in `dir`, a directory of the repository, as paths in it.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let entries =
        fs::read_dir(repo_path(dir)).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| dir.join(e.file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn load_yaml<T: DeserializeOwned>(path: &Path) -> T {
    let text = read_repo_file(path);
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ----------------------------------------------------------------- .env.example

/// `.env.example`: one section per binary, opened by a `# [name] …` line and
/// holding `NAME=value` lines, commented out (`# NAME=value`) or not.
struct EnvExample {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    /// Lines that fit no section, or repeat one.
    problems: Vec<String>,
}

impl EnvExample {
    fn load() -> Self {
        let mut example = Self {
            sections: BTreeMap::new(),
            problems: Vec::new(),
        };
        let mut section: Option<String> = None;
        for (index, line) in read_repo_file(ENV_EXAMPLE).lines().enumerate() {
            let number = index + 1;
            let line = line
                .strip_prefix('#')
                .map_or(line, |l| l.strip_prefix(' ').unwrap_or(l));
            if let Some(header) = line.strip_prefix('[') {
                let name = header.split(']').next().unwrap_or_default().to_owned();
                if example
                    .sections
                    .insert(name.clone(), BTreeMap::new())
                    .is_some()
                {
                    example
                        .problems
                        .push(format!("line {number}: a second section [{name}]"));
                }
                section = Some(name);
                continue;
            }
            let Some((variable, value)) = line.split_once('=').filter(|(v, _)| is_variable(v))
            else {
                continue;
            };
            let Some(name) = &section else {
                example.problems.push(format!(
                    "line {number}: {variable} is outside any [service] section"
                ));
                continue;
            };
            let entries = example.sections.entry(name.clone()).or_default();
            if entries
                .insert(variable.to_owned(), value.to_owned())
                .is_some()
            {
                example.problems.push(format!(
                    "line {number}: {variable} appears twice in [{name}]"
                ));
            }
        }
        example
    }
}

fn is_variable(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
