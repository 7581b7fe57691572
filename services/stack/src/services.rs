//! How long a deployment's services run, and how one learns that one has
//! stopped.
//!
//! Every service is told to stop by one shared signal (a `watch` channel,
//! the shutdown future each `run` takes) and is joined through one
//! `JoinSet`, so [`Services::stop`] returns only once every service has
//! returned: no worker of a previous deployment is still writing when an
//! experiment starts the next. A test instead [`detach`](Services::detach)es
//! them: they run for the rest of the test, and one that fails panics, as a
//! failed test should.

use anyhow::{Context, anyhow, bail};
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// The running services of one deployment.
pub struct Services {
    shutdown: watch::Sender<bool>,
    running: JoinSet<(&'static str, anyhow::Result<()>)>,
    /// The fan-out worker's own recorder, when it has one.
    fanout_metrics: Option<PrometheusHandle>,
}

impl Services {
    pub(crate) fn new() -> Self {
        Self {
            shutdown: watch::channel(false).0,
            running: JoinSet::new(),
            fanout_metrics: None,
        }
    }

    /// The shutdown future of one service: resolves once `stop` is called
    /// (or these services are dropped).
    pub(crate) fn until(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopped = self.shutdown.subscribe();
        async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        }
    }

    pub(crate) fn spawn(
        &mut self,
        name: &'static str,
        service: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.running.spawn(async move { (name, service.await) });
    }

    /// Runs the fan-out worker on a thread and a single-threaded runtime of
    /// its own, with `recorder` as that thread's local recorder
    /// (`metrics::set_default_local_recorder`): whatever it counts is its
    /// own.
    pub(crate) fn spawn_fanout_recording(
        &mut self,
        recorder: PrometheusRecorder,
        service: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.fanout_metrics = Some(recorder.handle());
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("fanout".to_owned())
            .spawn(move || {
                let run = || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let _local = metrics::set_default_local_recorder(&recorder);
                    runtime.block_on(service)
                };
                let _ = done.send(run());
            })
            .context("start the fan-out worker's thread")?;
        self.running.spawn(async move {
            let stopped = finished.await.unwrap_or_else(|_| Err(anyhow!("panicked")));
            ("fanout", stopped)
        });
        Ok(())
    }

    /// Waits for `serving`, failing at once if a service stops first.
    pub(crate) async fn ready(&mut self, serving: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            () = serving => Ok(()),
            Some(stopped) = self.running.join_next() => {
                let (service, result) = stopped?;
                Err(result.err().unwrap_or_else(|| anyhow!("stopped")))
                    .with_context(|| format!("the {service} service stopped while starting"))
            }
        }
    }

    /// An error if any service has stopped: they only stop when told to.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Some(stopped) = self.running.try_join_next() {
            let (service, result) = stopped?;
            return Err(result.err().unwrap_or_else(|| anyhow!("stopped")))
                .with_context(|| format!("the {service} service stopped"));
        }
        Ok(())
    }

    /// The fan-out worker's metrics now, in Prometheus' text format, if
    /// it was started with a recorder of its own
    /// ([`ServiceArgs::fanout_recorder`](crate::ServiceArgs)).
    pub fn fanout_metrics(&self) -> Option<String> {
        self.fanout_metrics.as_ref().map(PrometheusHandle::render)
    }

    /// Stops every service gracefully and waits until each has returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.send_replace(true);
        let mut failures = Vec::new();
        while let Some(stopped) = self.running.join_next().await {
            let (service, result) = stopped?;
            if let Err(error) = result {
                failures.push(format!("{service}: {error:#}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("services failed: {}", failures.join("; "))
        }
    }

    /// What `started` deployed, its services [`detach`](Self::detach)ed;
    /// panics with the reason it did not start.
    pub(crate) fn detach_started<T>(started: anyhow::Result<(T, Self)>) -> T {
        let (deployed, services) =
            started.unwrap_or_else(|error| panic!("start the services: {error:#}"));
        services.detach();
        deployed
    }

    /// Leaves the services running for the rest of the test (of its
    /// runtime); one that stops with an error panics with it.
    pub fn detach(mut self) {
        tokio::spawn(async move {
            while let Some(stopped) = self.running.join_next().await {
                if let Ok((service, Err(error))) = stopped {
                    panic!("{service} stopped: {error:#}");
                }
            }
            drop(self.shutdown);
        });
    }
}
