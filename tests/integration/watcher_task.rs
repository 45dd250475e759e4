//! The watcher as a task on a tokio runtime (`ConfigWatcher::spawn_on`) and SIGHUP through
//! `tokio::signal` (`reload_on_sighup_task`), on current-thread and multi-thread runtimes. Every
//! hazard scenario also runs with the watcher as a task (`watcher.rs`, the `task` tests).
#![cfg(unix)]

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hotcfg::watcher::{notify, Backend, ConfigWatcher, NativeEvents, NativeFactory};
use hotcfg::{FileSource, ReloadEvent, ReloadResult, Reloader, Trigger};
use hotcfg_tests::{wait_until, Sandbox};
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use super::watcher::{
    atomic_write, options, simple_rig, validate, Cfg, Mode, Rig, TrackedWatcher, TIMEOUT,
};

/// A tokio runtime driven by a thread of its own (`block_on` until dropped), so that the test's
/// thread may block waiting for events while the runtime's tasks run.
pub(super) struct DrivenRuntime {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DrivenRuntime {
    pub fn current_thread() -> Self {
        Self::driving(Builder::new_current_thread())
    }

    pub fn multi_thread() -> Self {
        let mut builder = Builder::new_multi_thread();
        builder.worker_threads(2);
        Self::driving(builder)
    }

    fn driving(mut builder: Builder) -> Self {
        let runtime = builder.enable_all().build().expect("a tokio runtime");
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = runtime.block_on(stopped);
        });
        DrivenRuntime {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Both flavours, named.
    pub fn each() -> [(&'static str, DrivenRuntime); 2] {
        [
            ("current_thread", Self::current_thread()),
            ("multi_thread", Self::multi_thread()),
        ]
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for DrivenRuntime {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn expect_applied(rig: &Rig, what: &str, trigger: Trigger, value: u64) {
    let event = rig.next_event(what);
    assert_eq!(event.trigger, trigger, "{what}: {event}");
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{what}: {event}"
    );
    assert_eq!(rig.value(), value, "{what}");
}

#[test]
fn a_watcher_task_applies_edits_on_both_runtime_flavours_and_both_backends() {
    for (flavour, runtime) in DrivenRuntime::each() {
        for mode in [Mode::Task, Mode::Poll] {
            let sandbox = Sandbox::new();
            let rig = simple_rig(&sandbox, 1);
            let watcher =
                ConfigWatcher::spawn_on(rig.reloader.clone(), options(mode), runtime.handle())
                    .expect("the watcher task starts");
            let backend = if mode == Mode::Poll {
                Backend::Poll
            } else {
                Backend::Native
            };
            assert_eq!(watcher.mode(), backend, "{flavour}");
            let file = Trigger::File(sandbox.path("config.toml"));
            atomic_write(&sandbox, "value = 2");
            expect_applied(
                &rig,
                &format!("{flavour} {mode:?}: the atomic save"),
                file.clone(),
                2,
            );
            sandbox.write("config.toml", "value = 3");
            expect_applied(
                &rig,
                &format!("{flavour} {mode:?}: the in-place write"),
                file,
                3,
            );
            wait_until(
                &format!("{flavour} {mode:?}: the task's count of triggers"),
                TIMEOUT,
                || watcher.stats().triggers >= 2,
            );
        }
    }
}

#[test]
fn watch_async_sets_up_off_the_calling_thread_and_watches_on_both_runtime_flavours() {
    for (flavour, runtime) in DrivenRuntime::each() {
        let sandbox = Sandbox::new();
        let rig = simple_rig(&sandbox, 1);
        let set_up_on = Arc::new(Mutex::new(None));
        let record = Arc::clone(&set_up_on);
        let factory: NativeFactory = Arc::new(move |native: NativeEvents| {
            *record.lock().unwrap() = Some(std::thread::current().id());
            let watcher =
                <notify::RecommendedWatcher as notify::Watcher>::new(native, Default::default())?;
            Ok(Box::new(watcher) as Box<dyn notify::Watcher + Send>)
        });
        let options = options(Mode::Task).native_watcher(factory);
        // This thread polls the future (`Handle::block_on`): the set-up must not run here.
        let watcher = runtime
            .handle()
            .block_on(ConfigWatcher::watch_async(rig.reloader.clone(), options))
            .expect("the watcher task starts");
        let set_up_on = set_up_on
            .lock()
            .unwrap()
            .expect("the native watcher was made");
        assert_ne!(set_up_on, std::thread::current().id(), "{flavour}");
        let file = Trigger::File(sandbox.path("config.toml"));
        atomic_write(&sandbox, "value = 2");
        expect_applied(&rig, &format!("{flavour}: the atomic save"), file, 2);
        runtime.handle().block_on(watcher.stop());
    }
}

/// How a test ends a watcher.
enum Ending {
    Stop,
    Drop,
}

/// Starts a watcher task with a tracked native watcher on each runtime flavour, ends it, and
/// checks that it is gone and does nothing more.
fn end_watcher_tasks(ending: Ending) {
    for (flavour, runtime) in DrivenRuntime::each() {
        let sandbox = Sandbox::new();
        let rig = simple_rig(&sandbox, 1);
        let tracked = TrackedWatcher::default();
        let watcher = ConfigWatcher::spawn_on(
            rig.reloader.clone(),
            tracked.options(Mode::Task),
            runtime.handle(),
        )
        .unwrap();
        match ending {
            Ending::Stop => {
                runtime.handle().block_on(watcher.stop());
                let outlived = "the native watcher outlived stop()";
                assert!(tracked.is_dropped(), "{flavour}: {outlived}");
            }
            Ending::Drop => {
                drop(watcher);
                // The task is aborted: its watches go when the runtime gets to it.
                let what = format!("{flavour}: the native watcher dropped");
                wait_until(&what, TIMEOUT, || tracked.is_dropped());
            }
        }
        tracked.check_stopped(&sandbox, &rig);
    }
}

#[test]
fn stop_returns_once_the_watcher_task_and_its_watches_are_gone() {
    end_watcher_tasks(Ending::Stop);
}

#[test]
fn a_dropped_watcher_task_stops_watching() {
    end_watcher_tasks(Ending::Drop);
}

#[test]
fn stop_also_stops_a_watcher_thread() {
    let runtime = DrivenRuntime::current_thread();
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    let tracked = TrackedWatcher::default();
    let watcher =
        ConfigWatcher::start(rig.reloader.clone(), tracked.options(Mode::Native)).unwrap();
    runtime.handle().block_on(watcher.stop());
    assert!(tracked.is_dropped(), "the native watcher outlived stop()");
    tracked.check_stopped(&sandbox, &rig);
}

/// A reloader of `value` whose handler is async: it awaits a timer and a task it spawns on the
/// runtime, then publishes the value it applied. Events go to the returned receiver.
fn async_rig(sandbox: &Sandbox, runtime: &Handle) -> (Reloader<Cfg>, mpsc::Receiver<ReloadEvent>) {
    let path = sandbox.write("config.toml", "value = 1");
    let (tx, events) = mpsc::channel();
    let tx = Mutex::new(tx);
    let reloader = Reloader::<Cfg>::builder(FileSource::new(path))
        .validator(validate)
        .runtime(runtime.clone())
        .on_apply_async("main", |cx| {
            let value = cx.new.value;
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let spawned = tokio::spawn(async move { value }).await?;
                assert_eq!(spawned, value);
                Ok(())
            })
        })
        .subscriber(move |event: &ReloadEvent| {
            let _ = tx.lock().unwrap().send(event.clone());
        })
        .build()
        .expect("the initial config loads");
    let startup = events.recv_timeout(TIMEOUT).expect("the startup event");
    assert_eq!(startup.trigger, Trigger::Startup);
    (reloader, events)
}

fn next(events: &mpsc::Receiver<ReloadEvent>, what: &str) -> ReloadEvent {
    events
        .recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("timed out after {TIMEOUT:?} waiting for {what}"))
}

/// The old failure (issue 15): a handler that awaits, triggered by the watcher, behaves as when
/// triggered from async code (`async_api.rs`). By the watcher's thread and by its task, on both
/// runtime flavours. A blocking trigger from the runtime's blocking pool would be refused on a
/// current-thread runtime with async handlers (`WouldBlockRuntime`): the task's reloads go
/// through `trigger_async`, so they apply there as on a multi-thread runtime.
#[test]
fn a_handler_that_awaits_applies_when_the_watcher_triggers_on_both_runtime_flavours() {
    for (flavour, runtime) in DrivenRuntime::each() {
        for mode in [Mode::Native, Mode::Task] {
            let sandbox = Sandbox::new();
            let (reloader, events) = async_rig(&sandbox, runtime.handle());
            let watcher = match mode {
                Mode::Task => {
                    ConfigWatcher::spawn_on(reloader.clone(), options(mode), runtime.handle())
                }
                _ => ConfigWatcher::start(reloader.clone(), options(mode)),
            }
            .unwrap();
            let what = format!("{flavour} {mode:?}: the watcher's reload");
            atomic_write(&sandbox, "value = 2");
            let event = next(&events, &what);
            let file = Trigger::File(sandbox.path("config.toml"));
            assert_eq!(event.trigger, file, "{what}: {event}");
            assert!(
                matches!(event.result, ReloadResult::Applied { .. }),
                "{what}: {event}"
            );
            assert_eq!(reloader.handle().load().value, 2, "{what}");
            drop(watcher);
        }
    }
}

/// `kill -HUP <pid>`, as an operator does.
fn send_sighup() {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Both flavours in one test, one after the other: every SIGHUP reaches every handler of the
/// process. Other tests' signals may reload these reloaders early; each still sees its edit
/// applied by a signal.
#[test]
fn sighup_through_tokio_signal_reloads_on_both_runtime_flavours() {
    for (flavour, runtime) in DrivenRuntime::each() {
        // A plain reloader.
        let sandbox = Sandbox::new();
        let rig = simple_rig(&sandbox, 1);
        let guard = hotcfg::reload_on_sighup_task(rig.reloader.clone(), runtime.handle())
            .expect("install the handler");
        sandbox.write("config.toml", "value = 2");
        send_sighup();
        expect_applied(
            &rig,
            &format!("{flavour}: the reload SIGHUP triggers"),
            Trigger::Signal,
            2,
        );
        drop(guard);

        // With an async handler: on a current-thread runtime a blocking trigger would be refused.
        let sandbox = Sandbox::new();
        let (reloader, events) = async_rig(&sandbox, runtime.handle());
        let _guard = hotcfg::reload_on_sighup_task(reloader.clone(), runtime.handle())
            .expect("install the handler");
        sandbox.write("config.toml", "value = 3");
        send_sighup();
        let event = next(&events, &format!("{flavour}: the reload SIGHUP triggers"));
        assert_eq!(event.trigger, Trigger::Signal, "{event}");
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{flavour}: {event}"
        );
        assert_eq!(reloader.handle().load().value, 3);
    }
}
