//! Checks the Kubernetes manifests under `deploy/k8s` without a cluster.
//!
//! Two layers. `deploy/k8s/validate.sh` renders every kustomization and
//! validates each object against the Kubernetes API schemas: misspelt
//! fields, wrong types, unknown kinds. What a schema cannot see is whether
//! the objects fit together and fit the code: an env var no service reads, a
//! probe on a port the container does not open, a Service selecting no pods,
//! an autoscaler aimed at nothing. The tests here read the rendered objects
//! and check those cross-references, asking each service's clap `Config`
//! what it reads (`common/config_vars.rs`, shared with `compose_file.rs`).
//! A failure lists everything wrong at once, naming the rendering
//! (`base`, `overlays-local`), the object and the setting.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;

use common::config_vars::{
    BINARIES, Binary, Kind, disagreements, endpoints, is_every_interface, split_host_port,
};
use common::{assert_no_problems, repo_path};

const K8S_DIR: &str = "deploy/k8s";
const SCRIPT: &str = "deploy/k8s/validate.sh";

/// The image every chirp container runs (`deploy/Dockerfile`), by name.
const CHIRP_IMAGE: &str = "chirp";

/// The rendering that is a starting point rather than something to apply:
/// it leaves the Secrets to whoever deploys it.
const BASE: &str = "base";

/// Secrets that a backend's operator writes, never these manifests: the
/// connection string CloudNativePG makes for the application user.
const OPERATOR_SECRETS: [&str; 1] = ["chirp-pg-app"];

/// The worker whose replicas must not outnumber the topic's partitions.
const CONSUMER: &str = "fanout";
/// The binary whose replicas each need their own Snowflake worker id.
const ID_MINTER: &str = "tweet";

#[test]
fn every_kustomization_renders_and_matches_the_kubernetes_schemas() {
    let run = run();
    assert!(
        run.succeeded,
        "{SCRIPT} failed; its output:\n{}",
        run.output
    );
}

/// The checks below find chirp containers by their binary: one whose
/// command names none would escape them all.
#[test]
fn every_binary_runs_and_every_chirp_container_runs_one() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for workload in &rendering.workloads {
            for container in workload.containers.iter().filter(|c| c.is_chirp()) {
                if container.binary().is_none() {
                    problems.push(format!(
                        "{} runs {:?}, which is not one of the binaries {:?}",
                        workload.at(rendering, container),
                        container.command,
                        BINARIES.map(|b| b.name)
                    ));
                }
            }
        }
        let chirps = rendering.chirp_containers();
        for binary in BINARIES {
            if !chirps.iter().any(|c| c.binary.name == binary.name) {
                problems.push(format!(
                    "{}: nothing runs `{}`",
                    rendering.name, binary.name
                ));
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

#[test]
fn containers_set_only_settings_their_binary_reads() {
    let problems = each_chirp_container(|chirp, problems| {
        for name in chirp.env.keys().filter(|name| !chirp.binary.reads(name)) {
            problems.push(format!(
                "{chirp} sets {name}, which `{}` does not read",
                chirp.binary.name
            ));
        }
    });
    assert_no_problems(K8S_DIR, problems);
}

#[test]
fn containers_set_every_required_setting() {
    let problems = each_chirp_container(|chirp, problems| {
        for setting in chirp.binary.settings().iter().filter(|s| s.is_required()) {
            if !chirp.env.contains_key(&setting.env) {
                problems.push(format!(
                    "{chirp} does not set {}, which `{}` requires (it has no default)",
                    setting.env, chirp.binary.name
                ));
            }
        }
    });
    assert_no_problems(K8S_DIR, problems);
}

#[test]
fn settings_pass_the_services_own_parsers() {
    let problems = each_chirp_container(|chirp, problems| {
        if let Err(error) = chirp.binary.parse(&chirp.known_values()) {
            problems.push(format!("{chirp} would not start: {error}"));
        }
    });
    assert_no_problems(K8S_DIR, problems);
}

/// Every ConfigMap, Secret and key an env var comes from exists, except
/// Secrets that the base leaves to the deployer or an operator writes.
#[test]
fn env_sources_exist() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for workload in &rendering.workloads {
            for container in &workload.containers {
                let (_, unresolved) = rendering.env_of(container);
                for problem in unresolved {
                    problems.push(format!("{}: {problem}", workload.at(rendering, container)));
                }
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

/// A setting that several services read names something they share (the
/// topic, the Redis key prefix, a peer) and must have one value across them.
#[test]
fn shared_settings_agree_across_services() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        let chirps = rendering.chirp_containers();
        let values: Vec<(String, Binary, BTreeMap<String, String>)> = chirps
            .iter()
            .map(|c| {
                let name = format!("{}/{}", c.workload.kind, c.workload.name);
                (name, c.binary, c.described_values())
            })
            .collect();
        let processes = values.iter().map(|(n, b, v)| (n.as_str(), *b, v));
        let found = disagreements(processes);
        problems.extend(
            found
                .into_iter()
                .map(|p| format!("{}: {p}", rendering.name)),
        );
    }
    assert_no_problems(K8S_DIR, problems);
}

/// What a service listens on (`LISTEN_ADDR`, `METRICS_ADDR`) must be
/// reachable from other pods and declared as a container port, and every
/// declared port must be one it listens on.
#[test]
fn container_ports_are_the_ports_the_services_listen_on() {
    let problems = each_chirp_container(|chirp, problems| {
        let mut listens = BTreeSet::new();
        for setting in chirp.binary.settings() {
            if setting.kind() != Kind::Listener {
                continue;
            }
            let value = match chirp.env.get(&setting.env) {
                Some(EnvValue::Known(value)) => value.clone(),
                Some(_) => continue,
                None => match setting.default {
                    Some(default) => default,
                    None => continue, // not served
                },
            };
            let (host, port) = split_host_port(&value);
            if !is_every_interface(host) {
                problems.push(format!(
                    "{chirp}: {} is {value}; only 0.0.0.0 or [::] can be reached from other pods",
                    setting.env
                ));
            }
            let Some(port) = port else { continue };
            listens.insert(port);
            if !chirp
                .container
                .ports
                .iter()
                .any(|p| p.container_port == port)
            {
                problems.push(format!(
                    "{chirp}: {} is {value}, but port {port} is not among the container's ports",
                    setting.env
                ));
            }
        }
        for port in &chirp.container.ports {
            if !listens.contains(&port.container_port) {
                problems.push(format!(
                    "{chirp} declares port {}, on which `{}` does not listen (it listens on {listens:?})",
                    port.container_port, chirp.binary.name
                ));
            }
        }
    });
    assert_no_problems(K8S_DIR, problems);
}

/// Every probe asks a port the container opens; a gRPC probe asks the gRPC
/// server, not the metrics endpoint; every server has readiness and
/// liveness probes, and the worker a liveness probe.
#[test]
fn probes_ask_ports_the_containers_open() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for workload in &rendering.workloads {
            for container in &workload.containers {
                let at = workload.at(rendering, container);
                for (kind, probe) in container.probes() {
                    let Some(port) = probe.port() else {
                        problems.push(format!("{at}: the {kind} probe checks no port"));
                        continue;
                    };
                    if container.resolve(&port).is_none() {
                        problems.push(format!(
                            "{at}: the {kind} probe asks port {port}, which the container does not declare"
                        ));
                    }
                }
            }
        }
        for chirp in rendering.chirp_containers() {
            let listen = chirp.port("LISTEN_ADDR");
            let mut kinds = BTreeSet::new();
            for (kind, probe) in chirp.container.probes() {
                kinds.insert(kind);
                if let Some(grpc) = &probe.grpc
                    && Some(grpc.port) != listen
                {
                    problems.push(format!(
                        "{chirp}: the {kind} probe asks gRPC health on port {}, but the gRPC server listens on {}",
                        grpc.port,
                        listen.map_or("no port".to_owned(), |p| p.to_string())
                    ));
                }
            }
            let needed: &[&str] = if listen.is_some() {
                &["readiness", "liveness"]
            } else {
                &["liveness"]
            };
            for kind in needed.iter().filter(|k| !kinds.contains(*k)) {
                problems.push(format!("{chirp} has no {kind} probe"));
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

/// A workload's selector matches its own pods, and every Service selects
/// pods that open the port it forwards to.
#[test]
fn services_select_pods_that_open_their_ports() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        let at = |kind: &str, name: &str| format!("{}: {kind}/{name}", rendering.name);
        for workload in &rendering.workloads {
            if workload.selector.is_empty() || !selects(&workload.selector, &workload.pod_labels) {
                problems.push(format!(
                    "{}: its selector {:?} does not match its pods' labels {:?}",
                    at(&workload.kind, &workload.name),
                    workload.selector,
                    workload.pod_labels
                ));
            }
        }
        for service in &rendering.services {
            let selected: Vec<&Workload> = rendering
                .workloads
                .iter()
                .filter(|w| selects(&service.selector, &w.pod_labels))
                .collect();
            if service.selector.is_empty() || selected.is_empty() {
                problems.push(format!(
                    "{}: its selector {:?} matches no pods",
                    at("Service", &service.name),
                    service.selector
                ));
                continue;
            }
            for port in &service.ports {
                let target = port.target();
                for workload in &selected {
                    if !workload
                        .containers
                        .iter()
                        .any(|c| c.resolve(&target).is_some())
                    {
                        problems.push(format!(
                            "{}: port {} forwards to {target}, which {} does not open",
                            at("Service", &service.name),
                            port.port,
                            at(&workload.kind, &workload.name)
                        ));
                    }
                }
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

/// `TWEET_ADDR=tweet:50051` must name a Service with port 50051 that
/// forwards to pods running `tweet`, on the port `tweet` listens on.
#[test]
fn peer_addresses_reach_that_peer_on_its_port() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for chirp in rendering.chirp_containers() {
            for setting in chirp.binary.settings() {
                let Some(peer) = setting.peer() else { continue };
                let value = match chirp.env.get(&setting.env) {
                    Some(EnvValue::Known(value)) => value.clone(),
                    Some(_) => continue,
                    None => setting.default.clone().unwrap_or_default(),
                };
                if let Err(problem) = rendering.reaches(&value, &peer) {
                    problems.push(format!(
                        "{chirp}: {} is {value}, but {problem}",
                        setting.env
                    ));
                }
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

/// An autoscaler scales a workload that exists, whose containers all
/// request the resource it measures (utilisation is relative to the
/// request), and that leaves the count to it (a `replicas` in the manifest
/// would reset the autoscaler's choice on every apply).
#[test]
fn autoscalers_target_workloads_they_can_scale() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for hpa in &rendering.autoscalers {
            let at = format!("{}: HorizontalPodAutoscaler/{}", rendering.name, hpa.name);
            let target = &hpa.spec.scale_target_ref;
            let Some(workload) = rendering
                .workloads
                .iter()
                .find(|w| w.kind == target.kind && w.name == target.name)
            else {
                problems.push(format!(
                    "{at} scales {}/{}, which does not exist",
                    target.kind, target.name
                ));
                continue;
            };
            if workload.replicas.is_some() {
                problems.push(format!(
                    "{at}: {}/{} sets replicas, which every apply would reset under the autoscaler",
                    workload.kind, workload.name
                ));
            }
            if hpa.spec.min_replicas.unwrap_or(1) > hpa.spec.max_replicas {
                problems.push(format!("{at}: minReplicas exceeds maxReplicas"));
            }
            for metric in &hpa.spec.metrics {
                let Some(resource) = &metric.resource else {
                    continue;
                };
                for container in &workload.containers {
                    if !container.requests(&resource.name) {
                        problems.push(format!(
                            "{at} scales on {} utilisation, but container `{}` requests no {}",
                            resource.name, container.name, resource.name
                        ));
                    }
                }
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

/// Kafka gives each partition to one consumer of a group: workers beyond the
/// partition count would idle.
#[test]
fn fanout_workers_do_not_outnumber_the_partitions() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for chirp in rendering.chirp_containers() {
            if chirp.binary.name != CONSUMER {
                continue;
            }
            let replicas = rendering.most_replicas(chirp.workload);
            let partitions = match chirp.value("KAFKA_TOPIC_PARTITIONS") {
                Some(value) => value.parse::<u32>().unwrap_or(0),
                None => continue, // reported by settings_pass_the_services_own_parsers
            };
            if replicas > partitions {
                problems.push(format!(
                    "{chirp}: up to {replicas} workers share a topic of {partitions} partitions; {} of them would idle",
                    replicas - partitions
                ));
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

/// Two replicas with one Snowflake worker id can mint the same tweet id. A
/// StatefulSet numbers its pods, and each pod's number can be its id.
#[test]
fn every_tweet_replica_mints_ids_as_its_own_worker() {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for chirp in rendering.chirp_containers() {
            if chirp.binary.name != ID_MINTER || rendering.most_replicas(chirp.workload) <= 1 {
                continue;
            }
            let per_pod = matches!(
                chirp.env.get("NODE_ID"),
                Some(EnvValue::FromPod(field)) if field.contains("apps.kubernetes.io/pod-index")
            );
            if !per_pod || chirp.workload.kind != "StatefulSet" {
                problems.push(format!(
                    "{chirp} runs several replicas, so each needs its own NODE_ID: run it as a StatefulSet and take NODE_ID from the label apps.kubernetes.io/pod-index"
                ));
            }
        }
    }
    assert_no_problems(K8S_DIR, problems);
}

/// Every chirp pod asks to be scraped, on the port its `METRICS_ADDR` serves.
#[test]
fn prometheus_scrapes_every_service_on_its_metrics_port() {
    let problems = each_chirp_container(|chirp, problems| {
        let Some(port) = chirp.port("METRICS_ADDR") else {
            problems.push(format!(
                "{chirp} sets no METRICS_ADDR, so there is nothing to scrape"
            ));
            return;
        };
        let annotation = |name: &str| chirp.workload.pod_annotations.get(name).map(String::as_str);
        if annotation("prometheus.io/scrape") != Some("true") {
            problems.push(format!(
                "{chirp}: its pods lack prometheus.io/scrape: \"true\""
            ));
        }
        let port = port.to_string();
        let annotated = annotation("prometheus.io/port");
        if annotated != Some(port.as_str()) {
            problems.push(format!(
                "{chirp}: prometheus.io/port is {}, but METRICS_ADDR serves on {port}",
                annotated.unwrap_or("unset")
            ));
        }
        if annotation("prometheus.io/path").is_some_and(|path| path != "/metrics") {
            problems.push(format!("{chirp}: prometheus.io/path is not /metrics"));
        }
    });
    assert_no_problems(K8S_DIR, problems);
}

// ----------------------------------------------------------------- running the script

/// One run of `validate.sh`, shared by every test of this binary.
struct Run {
    succeeded: bool,
    output: String,
    renderings: Vec<Rendering>,
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("k8s");
        // Renderings of a kustomization deleted since must not linger.
        let _ = fs::remove_dir_all(&out);
        let result = Command::new("bash")
            .arg(repo_path(SCRIPT))
            .arg(&out)
            .output()
            .unwrap_or_else(|e| panic!("run {SCRIPT}: {e}"));
        let output = String::from_utf8_lossy(&result.stdout).into_owned()
            + &String::from_utf8_lossy(&result.stderr);
        let renderings = kustomizations()
            .into_iter()
            .filter_map(|name| {
                let text = fs::read_to_string(out.join(format!("{name}.yaml"))).ok()?;
                Some(Rendering::parse(name, &text))
            })
            .collect();
        Run {
            succeeded: result.status.success(),
            output,
            renderings,
        }
    })
}

/// Every kustomization's rendering. A kustomization that did not render
/// fails the test that asks, rather than leaving it nothing to check.
fn renderings() -> &'static [Rendering] {
    let run = run();
    let rendered: BTreeSet<&str> = run.renderings.iter().map(|r| r.name.as_str()).collect();
    let expected = kustomizations();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|k| !rendered.contains(k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{SCRIPT} rendered no {missing:?}; its output:\n{}",
        run.output
    );
    &run.renderings
}

/// The kustomizations under `deploy/k8s`, named as `validate.sh` names their
/// renderings: the directory, with `-` for `/`.
fn kustomizations() -> Vec<String> {
    fn visit(root: &Path, dir: &Path, names: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for path in entries.filter_map(Result::ok).map(|e| e.path()) {
            if path.is_dir() {
                visit(root, &path, names);
            } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
                let dir = path.parent().and_then(|p| p.strip_prefix(root).ok());
                let name = dir.map(|d| d.to_string_lossy().replace('/', "-"));
                names.extend(name);
            }
        }
    }
    let root = repo_path(K8S_DIR);
    let mut names = Vec::new();
    visit(&root, &root, &mut names);
    names.sort();
    names
}

/// Runs `check` on every chirp container of every rendering and gathers
/// what it finds.
fn each_chirp_container(check: impl Fn(&Chirp<'_>, &mut Vec<String>)) -> Vec<String> {
    let mut problems = Vec::new();
    for rendering in renderings() {
        for chirp in rendering.chirp_containers() {
            check(&chirp, &mut problems);
        }
    }
    problems
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

// ----------------------------------------------------------------- a rendering

/// The objects of one rendered kustomization, reduced to what the checks need.
struct Rendering {
    name: String,
    workloads: Vec<Workload>,
    services: Vec<Service>,
    autoscalers: Vec<Autoscaler>,
    /// ConfigMaps by name: key to value.
    config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets by name: their keys (the values are none of the checks' business).
    secrets: BTreeMap<String, BTreeSet<String>>,
}

/// A Deployment or StatefulSet.
struct Workload {
    kind: String,
    name: String,
    /// `None` when the manifest leaves the count to someone else (an autoscaler).
    replicas: Option<u32>,
    selector: BTreeMap<String, String>,
    pod_labels: BTreeMap<String, String>,
    pod_annotations: BTreeMap<String, String>,
    containers: Vec<Container>,
}

/// Where an env var's value comes from.
#[derive(Clone)]
enum EnvValue {
    /// Written in the manifests, directly or in a ConfigMap.
    Known(String),
    /// From the pod itself (`fieldRef`), e.g. its StatefulSet index.
    FromPod(String),
    /// From a Secret, which the checks do not read.
    Secret { name: String, key: String },
}

/// One chirp container, with the binary it runs and the variables it gets.
struct Chirp<'a> {
    rendering: &'a Rendering,
    workload: &'a Workload,
    container: &'a Container,
    binary: Binary,
    env: BTreeMap<String, EnvValue>,
}

impl Rendering {
    fn parse(name: String, text: &str) -> Self {
        let mut rendering = Self {
            name,
            workloads: Vec::new(),
            services: Vec::new(),
            autoscalers: Vec::new(),
            config_maps: BTreeMap::new(),
            secrets: BTreeMap::new(),
        };
        for document in serde_yaml::Deserializer::from_str(text) {
            let value = serde_yaml::Value::deserialize(document)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", rendering.name));
            if value.is_null() {
                continue;
            }
            let object: Object = serde_yaml::from_value(value)
                .unwrap_or_else(|e| panic!("{}: not a Kubernetes object: {e}", rendering.name));
            rendering.add(object);
        }
        rendering
    }

    fn add(&mut self, object: Object) {
        let what = format!("{}: {}/{}", self.name, object.kind, object.metadata.name);
        match object.kind.as_str() {
            "Deployment" | "StatefulSet" => {
                let spec: WorkloadSpec =
                    serde_yaml::from_value(object.spec).unwrap_or_else(|e| panic!("{what}: {e}"));
                self.workloads.push(Workload {
                    kind: object.kind,
                    name: object.metadata.name,
                    replicas: spec.replicas,
                    selector: spec.selector.match_labels,
                    pod_labels: spec.template.metadata.labels,
                    pod_annotations: spec.template.metadata.annotations,
                    containers: spec.template.spec.containers,
                });
            }
            "Service" => {
                let spec: ServiceSpec =
                    serde_yaml::from_value(object.spec).unwrap_or_else(|e| panic!("{what}: {e}"));
                self.services.push(Service {
                    name: object.metadata.name,
                    selector: spec.selector,
                    ports: spec.ports,
                });
            }
            "HorizontalPodAutoscaler" => {
                let spec: AutoscalerSpec =
                    serde_yaml::from_value(object.spec).unwrap_or_else(|e| panic!("{what}: {e}"));
                self.autoscalers.push(Autoscaler {
                    name: object.metadata.name,
                    spec,
                });
            }
            "ConfigMap" => {
                self.config_maps.insert(object.metadata.name, object.data);
            }
            "Secret" => {
                let keys = object
                    .data
                    .into_keys()
                    .chain(object.string_data.into_keys());
                self.secrets.insert(object.metadata.name, keys.collect());
            }
            _ => {}
        }
    }

    fn chirp_containers(&self) -> Vec<Chirp<'_>> {
        let mut chirps = Vec::new();
        for workload in &self.workloads {
            for container in &workload.containers {
                let Some(binary) = container.binary() else {
                    continue;
                };
                chirps.push(Chirp {
                    rendering: self,
                    workload,
                    container,
                    binary,
                    env: self.env_of(container).0,
                });
            }
        }
        chirps
    }

    /// The variables `container` gets, as Kubernetes sets them (`env` over
    /// `envFrom`), and the references among them that do not resolve.
    fn env_of(&self, container: &Container) -> (BTreeMap<String, EnvValue>, Vec<String>) {
        let mut env = BTreeMap::new();
        let mut problems = Vec::new();
        for source in &container.env_from {
            let prefix = source.prefix.as_deref().unwrap_or_default();
            if let Some(map) = &source.config_map_ref {
                match self.config_maps.get(&map.name) {
                    Some(data) => {
                        for (key, value) in data {
                            env.insert(format!("{prefix}{key}"), EnvValue::Known(value.clone()));
                        }
                    }
                    None if map.optional => {}
                    None => problems.push(format!(
                        "envFrom names ConfigMap {}, which is not here",
                        map.name
                    )),
                }
            }
            if let Some(secret) = &source.secret_ref {
                match self.secrets.get(&secret.name) {
                    Some(keys) => {
                        for key in keys {
                            let value = EnvValue::Secret {
                                name: secret.name.clone(),
                                key: key.clone(),
                            };
                            env.insert(format!("{prefix}{key}"), value);
                        }
                    }
                    None => problems.push(format!(
                        "envFrom takes every key of Secret {}, which is not here, so nothing can tell which variables it sets; name them one by one with secretKeyRef",
                        secret.name
                    )),
                }
            }
        }
        for var in &container.env {
            let from = var.value_from.as_ref();
            let value = if let Some(value) = &var.value {
                EnvValue::Known(value.clone())
            } else if let Some(key) = from.and_then(|f| f.config_map_key_ref.as_ref()) {
                match self
                    .config_maps
                    .get(&key.name)
                    .and_then(|d| d.get(&key.key))
                {
                    Some(value) => EnvValue::Known(value.clone()),
                    None => {
                        problems.push(format!(
                            "{} comes from ConfigMap {} key {}, which is not here",
                            var.name, key.name, key.key
                        ));
                        continue;
                    }
                }
            } else if let Some(key) = from.and_then(|f| f.secret_key_ref.as_ref()) {
                if let Err(problem) = self.check_secret(&key.name, &key.key) {
                    problems.push(format!("{}: {problem}", var.name));
                }
                EnvValue::Secret {
                    name: key.name.clone(),
                    key: key.key.clone(),
                }
            } else if let Some(field) = from.and_then(|f| f.field_ref.as_ref()) {
                EnvValue::FromPod(field.field_path.clone())
            } else {
                EnvValue::Known(String::new())
            };
            env.insert(var.name.clone(), value);
        }
        (env, problems)
    }

    /// A Secret these manifests are meant to hold must be here, with `key`.
    fn check_secret(&self, name: &str, key: &str) -> Result<(), String> {
        match self.secrets.get(name) {
            Some(keys) if keys.contains(key) => Ok(()),
            Some(keys) => Err(format!("Secret {name} has no key {key}, only {keys:?}")),
            None if self.name == BASE || OPERATOR_SECRETS.contains(&name) => Ok(()),
            None => Err(format!(
                "comes from Secret {name}, which this rendering does not hold (a generated Secret with a hash suffix would not match)"
            )),
        }
    }

    /// Whether `address` reaches pods running `peer` on the port it listens on.
    /// Every instance named by a list (or a `dns:///` name) must.
    fn reaches(&self, address: &str, peer: &str) -> Result<(), String> {
        endpoints(address)
            .into_iter()
            .try_for_each(|(host, port)| self.reaches_one(host, port, peer))
    }

    fn reaches_one(&self, host: &str, port: Option<u16>, peer: &str) -> Result<(), String> {
        let service_name = host.split('.').next().unwrap_or(host);
        let service = self
            .services
            .iter()
            .find(|s| s.name == service_name)
            .ok_or_else(|| format!("there is no Service `{service_name}`"))?;
        let port = port.ok_or("it names no port")?;
        let forward = service
            .ports
            .iter()
            .find(|p| p.port == port)
            .ok_or_else(|| format!("Service `{service_name}` has no port {port}"))?;
        let chirps = self.chirp_containers();
        let behind: Vec<&Chirp<'_>> = chirps
            .iter()
            .filter(|c| selects(&service.selector, &c.workload.pod_labels))
            .collect();
        if behind.is_empty() || behind.iter().any(|c| c.binary.name != peer) {
            let runs: BTreeSet<&str> = behind.iter().map(|c| c.binary.name).collect();
            return Err(format!(
                "Service `{service_name}` forwards to pods running {runs:?}, not `{peer}`"
            ));
        }
        for chirp in behind {
            let lands = chirp.container.resolve(&forward.target());
            if lands.is_none() || lands != chirp.port("LISTEN_ADDR") {
                return Err(format!(
                    "Service `{service_name}` forwards port {port} to {}, where `{peer}` does not listen",
                    forward.target()
                ));
            }
        }
        Ok(())
    }

    /// The most replicas `workload` may run: its autoscaler's maximum, or
    /// its own count (1 if unset).
    fn most_replicas(&self, workload: &Workload) -> u32 {
        let target = |a: &&Autoscaler| {
            let target = &a.spec.scale_target_ref;
            target.kind == workload.kind && target.name == workload.name
        };
        match self.autoscalers.iter().find(target) {
            Some(autoscaler) => autoscaler.spec.max_replicas,
            None => workload.replicas.unwrap_or(1),
        }
    }
}

impl Workload {
    fn at(&self, rendering: &Rendering, container: &Container) -> String {
        format!(
            "{}: {}/{} container `{}`",
            rendering.name, self.kind, self.name, container.name
        )
    }
}

impl Chirp<'_> {
    /// A setting's value as the service gets it, when the manifests spell it
    /// out; otherwise the `Config`'s default.
    fn value(&self, env: &str) -> Option<String> {
        match self.env.get(env) {
            Some(EnvValue::Known(value)) => Some(value.clone()),
            Some(_) => None,
            None => self.binary.setting(env)?.default,
        }
    }

    fn port(&self, env: &str) -> Option<u16> {
        split_host_port(&self.value(env)?).1
    }

    fn known_values(&self) -> BTreeMap<String, String> {
        let known = self.env.iter().filter_map(|(name, value)| match value {
            EnvValue::Known(value) => Some((name.clone(), value.clone())),
            _ => None,
        });
        known.collect()
    }

    /// Every variable's value, or where it comes from when the manifests do
    /// not hold it.
    fn described_values(&self) -> BTreeMap<String, String> {
        let described = self.env.iter().map(|(name, value)| {
            let value = match value {
                EnvValue::Known(value) => value.clone(),
                EnvValue::FromPod(field) => format!("(the pod's {field})"),
                EnvValue::Secret { name, key } => format!("(Secret {name} key {key})"),
            };
            (name.clone(), value)
        });
        described.collect()
    }
}

impl std::fmt::Display for Chirp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.workload.at(self.rendering, self.container);
        f.write_str(&at)
    }
}

// ----------------------------------------------------------------- the objects

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    kind: String,
    metadata: Metadata,
    #[serde(default)]
    spec: serde_yaml::Value,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    string_data: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Metadata {
    /// Empty in a pod template.
    #[serde(default)]
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct WorkloadSpec {
    replicas: Option<u32>,
    selector: LabelSelector,
    template: PodTemplate,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelSelector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct PodTemplate {
    metadata: Metadata,
    spec: PodSpec,
}

#[derive(Deserialize)]
struct PodSpec {
    containers: Vec<Container>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    ports: Vec<ContainerPort>,
    #[serde(default)]
    env: Vec<EnvVar>,
    #[serde(default)]
    env_from: Vec<EnvFromSource>,
    startup_probe: Option<Probe>,
    readiness_probe: Option<Probe>,
    liveness_probe: Option<Probe>,
    #[serde(default)]
    resources: Resources,
}

impl Container {
    /// Whether the container runs the chirp image, whatever its registry and tag.
    fn is_chirp(&self) -> bool {
        let image = self.image.rsplit('/').next().unwrap_or_default();
        image.split([':', '@']).next() == Some(CHIRP_IMAGE)
    }

    /// The chirp binary this container runs: the chirp image, with a
    /// binary's name as its command.
    fn binary(&self) -> Option<Binary> {
        if !self.is_chirp() {
            return None;
        }
        Binary::named(self.command.first()?)
    }

    fn probes(&self) -> impl Iterator<Item = (&'static str, &Probe)> {
        [
            ("startup", &self.startup_probe),
            ("readiness", &self.readiness_probe),
            ("liveness", &self.liveness_probe),
        ]
        .into_iter()
        .filter_map(|(kind, probe)| Some((kind, probe.as_ref()?)))
    }

    /// The container port `port` means: a declared number, or the number of
    /// a declared name.
    fn resolve(&self, port: &PortRef) -> Option<u16> {
        let declared = self.ports.iter().find(|p| match port {
            PortRef::Number(n) => p.container_port == *n,
            PortRef::Name(name) => p.name.as_deref() == Some(name.as_str()),
        });
        declared.map(|p| p.container_port)
    }

    fn requests(&self, resource: &str) -> bool {
        self.resources.requests.contains_key(resource)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerPort {
    name: Option<String>,
    container_port: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvVar {
    name: String,
    value: Option<String>,
    value_from: Option<EnvVarSource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvVarSource {
    config_map_key_ref: Option<KeyRef>,
    secret_key_ref: Option<KeyRef>,
    field_ref: Option<FieldRef>,
}

#[derive(Deserialize)]
struct KeyRef {
    name: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FieldRef {
    field_path: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvFromSource {
    prefix: Option<String>,
    config_map_ref: Option<NameRef>,
    secret_ref: Option<NameRef>,
}

#[derive(Deserialize)]
struct NameRef {
    name: String,
    #[serde(default)]
    optional: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    http_get: Option<PortAction>,
    tcp_socket: Option<PortAction>,
    grpc: Option<GrpcAction>,
}

impl Probe {
    fn port(&self) -> Option<PortRef> {
        let by_name = self.http_get.as_ref().or(self.tcp_socket.as_ref());
        by_name
            .map(|action| action.port.clone())
            .or_else(|| Some(PortRef::Number(self.grpc.as_ref()?.port)))
    }
}

#[derive(Deserialize)]
struct PortAction {
    port: PortRef,
}

#[derive(Deserialize)]
struct GrpcAction {
    port: u16,
}

/// Kubernetes' IntOrString, as ports use it: a number or a port's name.
#[derive(Clone, Deserialize)]
#[serde(untagged)]
enum PortRef {
    Number(u16),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Name(name) => write!(f, "`{name}`"),
        }
    }
}

#[derive(Default, Deserialize)]
struct Resources {
    #[serde(default)]
    requests: BTreeMap<String, serde_yaml::Value>,
}

struct Service {
    name: String,
    selector: BTreeMap<String, String>,
    ports: Vec<ServicePort>,
}

#[derive(Deserialize)]
struct ServiceSpec {
    #[serde(default)]
    selector: BTreeMap<String, String>,
    #[serde(default)]
    ports: Vec<ServicePort>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServicePort {
    port: u16,
    target_port: Option<PortRef>,
}

impl ServicePort {
    /// Where the Service forwards: `targetPort`, by default the same number.
    fn target(&self) -> PortRef {
        self.target_port
            .clone()
            .unwrap_or(PortRef::Number(self.port))
    }
}

struct Autoscaler {
    name: String,
    spec: AutoscalerSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AutoscalerSpec {
    scale_target_ref: ScaleTarget,
    min_replicas: Option<u32>,
    max_replicas: u32,
    #[serde(default)]
    metrics: Vec<AutoscalerMetric>,
}

#[derive(Deserialize)]
struct ScaleTarget {
    kind: String,
    name: String,
}

#[derive(Deserialize)]
struct AutoscalerMetric {
    resource: Option<ResourceMetric>,
}

#[derive(Deserialize)]
struct ResourceMetric {
    name: String,
}
