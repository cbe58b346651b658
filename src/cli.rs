//! The command line: `run` (the default), `check` and `convert`, and how an invocation is
//! told to be native or oauth2-proxy's. [`parse`] turns the arguments into an [`Action`];
//! `main.rs` carries it out.
//!
//! clap parses the subcommands, `--help` and `--version` only. The configuration arguments
//! (`--config FILE.toml`, or oauth2-proxy's hundreds of flags, `--flag=value` and
//! `--flag value`) are taken raw and read by [`Source::from_args`] and
//! [`crate::config::oauth2_proxy`], so clap never rejects an oauth2-proxy flag: a command line
//! without a subcommand does not reach clap at all.

use crate::config::{Config, oauth2_proxy};
use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// EX_USAGE from sysexits.h: a bad command line or configuration.
pub const EXIT_USAGE: u8 = 64;

const USAGE: &str = "portcullis [run] [--config FILE.toml | OAUTH2-PROXY-FLAGS...]
       portcullis check [--config FILE.toml | OAUTH2-PROXY-FLAGS...]
       portcullis convert [OAUTH2-PROXY-FLAGS...] > FILE.toml";

const ABOUT: &str =
    "Forward-auth single sign-on for Traefik, nginx, Caddy and Envoy; a drop-in for oauth2-proxy.";

// Wrapped by hand: clap's wrapping needs a terminal-size dependency.
const LONG_ABOUT: &str = "Forward-auth single sign-on for Traefik, nginx, Caddy and Envoy, in front
of an OpenID Connect provider (Keycloak); a drop-in for oauth2-proxy.

Two ways to configure it:

  native        --config FILE.toml (or PORTCULLIS_CONFIG=FILE.toml), with PORTCULLIS_*
                variables overriding the file (PORTCULLIS_<KEY>,
                PORTCULLIS_<SECTION>_<KEY>; lists comma-separated). Every key is
                documented in config/example.toml. The file is reloaded on SIGHUP and
                when it changes.

  oauth2-proxy  an oauth2-proxy deployment's settings, unchanged: its flags
                (--flag=value, --flag value, repeated list flags), its OAUTH2_PROXY_*
                environment (plural names for lists) and its --config FILE.cfg, with
                oauth2-proxy's precedence (flags, then environment, then the file).
                They are translated into the native keys and validated the same way;
                PORTCULLIS_* variables still apply. An unknown or refused flag exits
                64, naming every one. Which flags are translated, accepted without
                effect or refused: docs/deploy.md, \"Migrating from oauth2-proxy\".

How they are told apart: an invocation is native when it has no arguments at all (the
file then comes from PORTCULLIS_CONFIG) or exactly --config FILE, -c FILE or
--config=FILE with FILE ending in .toml, and no OAUTH2_PROXY_* variable is set.
Anything else (any other argument, a --config file not ending in .toml, or any
OAUTH2_PROXY_* variable in the environment) is an oauth2-proxy configuration. The same
rule applies to the arguments after `run` and `check`; `convert` always reads
oauth2-proxy's.";

const AFTER_HELP: &str = "Exit status: 0; 64 (EX_USAGE) for a bad command line or configuration,
with every problem listed on stderr.

See config/example.toml for every native key, and docs/deploy.md for deploying and for
migrating from oauth2-proxy (change the image; optionally run `portcullis convert` once
to keep a native configuration).";

/// The arguments after `run` or `check`: a native file, or an oauth2-proxy command line.
#[derive(Debug, Args)]
struct ConfigArgs {
    /// --config FILE.toml (or nothing, with PORTCULLIS_CONFIG set), or oauth2-proxy's flags
    #[arg(
        value_name = "CONFIG",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

/// The arguments after `convert`: an oauth2-proxy command line.
#[derive(Debug, Args)]
struct OAuth2ProxyArgs {
    /// oauth2-proxy's flags (--flag=value, --flag value, --config FILE.cfg)
    #[arg(
        value_name = "OAUTH2-PROXY-FLAGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    args: Vec<String>,
}

// The doc comments below are the help text (`verbatim_doc_comment`: as wrapped here).
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default when no command is given)
    ///
    /// Serves HTTP, or HTTPS when tls_cert_file is set, until SIGTERM or SIGINT. A native
    /// file is reloaded on SIGHUP and when it changes; oauth2-proxy's flags need a restart.
    #[command(
        verbatim_doc_comment,
        override_usage = "portcullis [run] [--config FILE.toml | OAUTH2-PROXY-FLAGS...]"
    )]
    Run(ConfigArgs),
    /// Validate the configuration as startup does, print every problem, exit 0 or 64
    ///
    /// Like oauth2-proxy's --config-test: every file the configuration names is read, and
    /// its secrets, certificates and CA bundles are parsed, as at startup; no port is bound
    /// and the IdP is not contacted. Prints every problem on stderr and exits 64, or prints
    /// "configuration OK" on stdout (and any notices on stderr) and exits 0.
    #[command(
        verbatim_doc_comment,
        override_usage = "portcullis check [--config FILE.toml | OAUTH2-PROXY-FLAGS...]"
    )]
    Check(ConfigArgs),
    /// Print the native TOML equivalent of an oauth2-proxy configuration
    ///
    /// To migrate once and keep a native file. The flags after `convert`, the OAUTH2_PROXY_*
    /// environment and the --config FILE.cfg are read as `run` reads them, and the result is
    /// validated as startup validates it: run it where the files it names are readable
    /// (e.g. in the deployment's container).
    ///
    /// stdout: the TOML, for `portcullis --config FILE.toml`.
    /// stderr: notices, as `portcullis: ...` lines: flags without effect here, a secret
    ///         stretched, secrets written inline that belong in *_file keys.
    ///
    /// PORTCULLIS_* variables are applied when validating but not written out: they keep
    /// applying at startup. Exits 64 listing every problem if the configuration is refused.
    #[command(
        verbatim_doc_comment,
        override_usage = "portcullis convert [OAUTH2-PROXY-FLAGS...] > FILE.toml"
    )]
    Convert(OAuth2ProxyArgs),
}

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    override_usage = USAGE,
    after_long_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Serve.
    Run(Source),
    /// Validate as startup does, and exit.
    Check(Source),
    /// Print the native TOML of the oauth2-proxy configuration in these arguments (and the
    /// environment).
    Convert(Vec<String>),
    /// Text for stdout, and exit 0: `--help`, `--version`.
    Print(String),
    /// A bad command line: text for stderr, and exit 64.
    Usage(String),
}

/// Where the configuration comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// A native TOML file, with `PORTCULLIS_*` overrides; watched for reloads.
    Native(PathBuf),
    /// An oauth2-proxy command line, with its `OAUTH2_PROXY_*` environment and `.cfg` file.
    OAuth2Proxy(Vec<String>),
}

/// A configuration that was refused: what was being read, and every problem.
#[derive(Debug)]
pub struct Refused {
    pub title: String,
    pub problems: Vec<String>,
}

/// Reads the command line (without the program name). No subcommand means `run`, and such a
/// command line never reaches clap, so every oauth2-proxy flag gets to
/// [`crate::config::oauth2_proxy`]; `--help` or `--version` anywhere in it shows the help or
/// the version instead.
pub fn parse(args: &[String], env: &[(String, String)]) -> Action {
    let subcommand = args.first().is_some_and(|first| {
        first == "help"
            || Cli::command()
                .get_subcommands()
                .any(|c| c.get_name() == first)
    });
    if subcommand {
        return clap_parse(args.iter().map(String::as_str), env);
    }
    match args
        .iter()
        .find(|a| matches!(a.as_str(), "--help" | "-h" | "--version" | "-V"))
    {
        Some(flag) => clap_parse([flag.as_str()], env),
        None => match Source::from_args(args, env) {
            Ok(source) => Action::Run(source),
            Err(usage) => Action::Usage(usage),
        },
    }
}

fn clap_parse<'a>(args: impl IntoIterator<Item = &'a str>, env: &[(String, String)]) -> Action {
    let parsed = Cli::try_parse_from(std::iter::once("portcullis").chain(args));
    let command = match parsed {
        Ok(cli) => cli.command,
        // Help and version go to stdout and succeed; anything else is a usage error (64,
        // not clap's 2: a bad command line is a bad configuration here).
        Err(e) if !e.use_stderr() => return Action::Print(e.render().to_string()),
        Err(e) => return Action::Usage(e.render().to_string()),
    };
    let source = |args: ConfigArgs| Source::from_args(&args.args, env);
    let action = match command {
        Command::Run(args) => source(args).map(Action::Run),
        Command::Check(args) => source(args).map(Action::Check),
        Command::Convert(args) => Ok(Action::Convert(args.args)),
    };
    action.unwrap_or_else(Action::Usage)
}

impl Source {
    /// The configuration the arguments of `run` or `check` name, told apart by
    /// [`oauth2_proxy::is_oauth2_proxy_invocation`]. `Err`: nothing names one.
    pub fn from_args(args: &[String], env: &[(String, String)]) -> Result<Source, String> {
        if oauth2_proxy::is_oauth2_proxy_invocation(args, env) {
            return Ok(Source::OAuth2Proxy(args.to_vec()));
        }
        // What is left is native: nothing, or one `--config FILE.toml`.
        let path = match args {
            [flag, path] if flag == "--config" || flag == "-c" => Some(path.as_str()),
            [one] => one.strip_prefix("--config="),
            [] => env
                .iter()
                .find(|(k, _)| k == "PORTCULLIS_CONFIG")
                .map(|(_, v)| v.as_str()),
            _ => None,
        };
        match path {
            Some(p) if !p.is_empty() => Ok(Source::Native(PathBuf::from(p))),
            _ => Err(
                "portcullis: no configuration: give --config FILE.toml (or set \
                      PORTCULLIS_CONFIG=FILE.toml), or an oauth2-proxy command line; see \
                      `portcullis --help`\n"
                    .to_string(),
            ),
        }
    }

    /// The native file to watch for reloads (none for oauth2-proxy's flags).
    pub fn native_path(&self) -> Option<&Path> {
        match self {
            Source::Native(path) => Some(path),
            Source::OAuth2Proxy(_) => None,
        }
    }

    /// Reads and validates the configuration. `Ok` also holds lines for stderr (oauth2-proxy
    /// flags without effect here, secrets stretched).
    pub fn load(&self, env: &[(String, String)]) -> Result<(Config, Vec<String>), Refused> {
        match self {
            Source::Native(path) => Config::load(path, env)
                .map(|config| (config, Vec::new()))
                .map_err(|problems| Refused {
                    title: format!("invalid configuration ({})", path.display()),
                    problems,
                }),
            Source::OAuth2Proxy(args) => {
                Config::from_oauth2_proxy(args, env).map_err(|problems| Refused {
                    title: "invalid oauth2-proxy configuration".into(),
                    problems,
                })
            }
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Native(path) => write!(f, "{}", path.display()),
            Source::OAuth2Proxy(_) => f.write_str("oauth2-proxy flags, environment and .cfg file"),
        }
    }
}

/// What `portcullis convert` prints.
#[derive(Debug)]
pub struct Converted {
    /// The native configuration, for stdout: a `FILE.toml` for `portcullis --config`.
    pub toml: String,
    /// Lines for stderr.
    pub notices: Vec<String>,
}

/// The first lines of a converted file.
const CONVERTED_HEADER: &str = "# The native configuration of an oauth2-proxy deployment, \
written by `portcullis convert`.\n# Every key is documented in config/example.toml. Start with: \
portcullis --config FILE.toml\n\n";

/// `portcullis convert`: the native configuration of an oauth2-proxy one (`args`, the
/// `OAUTH2_PROXY_*` variables in `env`, the `.cfg` file they name), validated as startup
/// validates it. `Err` lists every problem.
pub fn convert(args: &[String], env: &[(String, String)]) -> Result<Converted, Vec<String>> {
    if args.is_empty() && !env.iter().any(|(k, _)| k.starts_with("OAUTH2_PROXY_")) {
        return Err(vec![
            "nothing to convert: give oauth2-proxy flags after `convert`, OAUTH2_PROXY_* variables, or --config FILE.cfg".into(),
        ]);
    }
    let translated = oauth2_proxy::translate(args, env, &|p: &Path| std::fs::read_to_string(p))?;
    Config::from_translated(&translated.toml, env)?;
    let mut notices = translated.notices;
    notices.extend(inline_secrets(&translated.toml));
    Ok(Converted {
        toml: format!("{CONVERTED_HEADER}{}", translated.toml),
        notices,
    })
}

/// A notice naming the secrets written inline into a converted file: a file that goes into a
/// ConfigMap or a repository should name secret files instead.
fn inline_secrets(toml_text: &str) -> Option<String> {
    let table: toml::Table = toml_text.parse().ok()?;
    let get = |section: &str, key: &str| table.get(section).and_then(|s| s.get(key)).cloned();
    let mut found = Vec::new();
    for (section, key) in [("oidc", "client_secret"), ("session", "cookie_secret")] {
        if get(section, key).is_some() {
            found.push(format!("{section}.{key} (use {section}.{key}_file)"));
        }
    }
    let redis_password = get("session", "redis_url")
        .and_then(|u| u.as_str().and_then(|u| url::Url::parse(u).ok()))
        .is_some_and(|u| u.password().is_some());
    if redis_password {
        found.push(
            "the password in session.redis_url (use session.redis_password_file)".to_string(),
        );
    }
    (!found.is_empty()).then(|| {
        format!(
            "the output holds secrets inline: {}; before it goes into a ConfigMap or a repository, put each in a file (a Kubernetes Secret) and name it with the *_file key (config/example.toml)",
            found.join(", ")
        )
    })
}

#[cfg(test)]
mod tests;
