//! The hotcfg examples are its example targets: `minimal` (`examples/minimal.rs`, a typed
//! configuration, a handler, the watcher and a reader in about 40 lines) and `taskdaemon`
//! (`examples/taskdaemon/`, the main job). This library target holds nothing; a package needs
//! one.
