//! Why a line of `config/plugins` (or `config/logging`) did not become a plugin: what
//! the plugin refused ([`PluginError`]) or why no plugin was found ([`BuildError`]).

use std::fmt;

use crate::config::ConfigError;

/// What a plugin's constructor refuses, by what the admin has to fix. The chain adds the
/// file, line and plugin name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The arguments on its line are wrong: unknown, missing, or a value that does not
    /// parse.
    Args(String),
    /// A config file it reads when it is loaded is unreadable or invalid.
    Config(String),
    /// An external plugin's program cannot be used (not found executable, no declaration
    /// of its hooks, a bad declaration).
    Program(String),
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::Args(m) | PluginError::Config(m) | PluginError::Program(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for PluginError {}

/// A helper's message about an argument (`timeout must be ...`).
impl From<String> for PluginError {
    fn from(m: String) -> PluginError {
        PluginError::Args(m)
    }
}

/// A helper's message about an argument (`loglevel needs a value`).
impl From<&str> for PluginError {
    fn from(m: &str) -> PluginError {
        PluginError::Args(m.to_string())
    }
}

impl From<ConfigError> for PluginError {
    fn from(e: ConfigError) -> PluginError {
        PluginError::Config(e.to_string())
    }
}

/// Why a config line named no plugin that could be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// The plugin refused its line.
    Refused {
        /// The name as written.
        plugin: String,
        /// What it refused.
        error: PluginError,
    },
    /// Neither built in nor a program in the plugin directories.
    NotFound {
        /// The name as written.
        plugin: String,
        /// The directories searched, as one line.
        dirs: String,
    },
    /// A logging plugin listed in `config/plugins`.
    LogSinkInPlugins {
        /// The name as written.
        plugin: String,
    },
    /// A name in `config/logging` that is no logging plugin.
    UnknownLogSink {
        /// The name as written.
        plugin: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Refused { plugin, error } => write!(f, "plugin {plugin}: {error}"),
            BuildError::NotFound { plugin, dirs } => write!(
                f,
                "plugin {plugin} not found in built-in plugins and plugin directories ({dirs})"
            ),
            BuildError::LogSinkInPlugins { plugin } => write!(
                f,
                "{plugin} is a logging plugin: list it in config/logging, not config/plugins"
            ),
            BuildError::UnknownLogSink { plugin } => write!(
                f,
                "logging plugin {plugin} not found (built-in: logging/warn, logging/syslog, logging/file, logging/devnull)"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
