//! `${provider:[path:]key}` placeholders (docs/mm2-behaviour.md, *Config providers*): the stock Kafka config providers
//! (`FileConfigProvider`, `DirectoryConfigProvider`, `EnvVarConfigProvider`), declared in the same
//! file with `config.providers` and `config.providers.<name>.class`.
//!
//! Deliberate difference from Kafka: a placeholder that cannot be resolved (undeclared provider,
//! missing file or key) is a configuration error here. Kafka leaves the literal `${...}` text in
//! place, which later surfaces as a baffling authentication failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

use super::diagnostics::Diagnostics;
use super::keys::CONFIG_PROVIDERS;
use super::properties::{Property, RawProperties};
use super::values;

const FILE_PROVIDER: &str = "org.apache.kafka.common.config.provider.FileConfigProvider";
const DIRECTORY_PROVIDER: &str = "org.apache.kafka.common.config.provider.DirectoryConfigProvider";
const ENV_PROVIDER: &str = "org.apache.kafka.common.config.provider.EnvVarConfigProvider";

/// A declared provider.
#[derive(Debug, Clone)]
enum Provider {
    /// Reads a key from a properties file; `allowed_paths` restricts which files (KIP-993).
    File { allowed_paths: Vec<PathBuf> },
    /// Reads a whole file from a directory.
    Directory { allowed_paths: Vec<PathBuf> },
    /// Reads an environment variable; `allowlist` restricts which variables.
    Env { allowlist: Option<Regex> },
}

/// Kafka's placeholder grammar (`ConfigTransformer.DEFAULT_PATTERN`).
fn placeholder_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(r"\$\{([^}]*?):(([^}]*?):)?([^}]*?)\}").expect("placeholder pattern is valid")
    })
}

/// Resolves every placeholder in `props` in place; returns the files the configuration depends on
/// (so a reload can watch them). Problems are reported to `diagnostics`.
pub fn resolve(
    props: &mut RawProperties,
    diagnostics: &mut Diagnostics,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    let providers = declared_providers(props, diagnostics);
    let mut referenced_files = Vec::new();
    let mut file_cache: BTreeMap<PathBuf, Result<RawProperties, String>> = BTreeMap::new();
    let mut problems: Vec<(Property, String, Option<String>)> = Vec::new();

    props.map_values(|property| {
        // Provider declarations themselves are never resolved.
        if property.key.starts_with(CONFIG_PROVIDERS) {
            return property.value.clone();
        }
        let mut resolved = String::with_capacity(property.value.len());
        let mut last_end = 0;
        for captures in placeholder_pattern().captures_iter(&property.value) {
            let whole = captures.get(0).expect("group 0 always matches");
            resolved.push_str(&property.value[last_end..whole.start()]);
            last_end = whole.end();
            let name = &captures[1];
            let path = captures.get(3).map(|m| m.as_str());
            let key = &captures[4];
            let outcome = match providers.get(name) {
                None => Err((
                    format!(
                        "placeholder `{}` uses config provider `{name}`, which is not declared",
                        whole.as_str()
                    ),
                    Some(declare_fix(name)),
                )),
                Some(provider) => lookup(
                    provider,
                    path,
                    key,
                    env,
                    &mut file_cache,
                    &mut referenced_files,
                )
                .map_err(|message| {
                    (
                        format!("cannot resolve `{}`: {message}", whole.as_str()),
                        None,
                    )
                }),
            };
            match outcome {
                Ok(value) => resolved.push_str(&value),
                Err((message, fix)) => {
                    problems.push((property.clone(), message, fix));
                    resolved.push_str(whole.as_str());
                }
            }
        }
        resolved.push_str(&property.value[last_end..]);
        resolved
    });

    for (property, message, fix) in problems {
        diagnostics.error(&property, message, fix);
    }
    referenced_files.sort();
    referenced_files.dedup();
    referenced_files
}

fn declare_fix(name: &str) -> String {
    let class = match name {
        "env" => ENV_PROVIDER,
        "dir" => DIRECTORY_PROVIDER,
        _ => FILE_PROVIDER,
    };
    format!("add `{CONFIG_PROVIDERS}={name}` and `{CONFIG_PROVIDERS}.{name}.class={class}`")
}

fn declared_providers(
    props: &RawProperties,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<String, Provider> {
    let mut providers = BTreeMap::new();
    let Some(declaration) = props.get(CONFIG_PROVIDERS) else {
        return providers;
    };
    for name in values::parse_list(&declaration.value) {
        let class_key = format!("{CONFIG_PROVIDERS}.{name}.class");
        let Some(class) = props.get(&class_key) else {
            diagnostics.error(
                declaration,
                format!("config provider `{name}` has no class"),
                Some(format!(
                    "add `{class_key}={FILE_PROVIDER}` (or the directory/env provider class)"
                )),
            );
            continue;
        };
        let param = |param: &str| props.get(&format!("{CONFIG_PROVIDERS}.{name}.param.{param}"));
        let allowed_paths = || {
            param("allowed.paths")
                .map(|p| {
                    values::parse_list(&p.value)
                        .into_iter()
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let provider = match class.value.trim() {
            FILE_PROVIDER => Provider::File {
                allowed_paths: allowed_paths(),
            },
            DIRECTORY_PROVIDER => Provider::Directory {
                allowed_paths: allowed_paths(),
            },
            ENV_PROVIDER => {
                let allowlist = match param("allowlist.pattern") {
                    None => None,
                    Some(pattern) => match Regex::new(&format!("^(?:{})$", pattern.value)) {
                        Ok(regex) => Some(regex),
                        Err(error) => {
                            diagnostics.error(
                                pattern,
                                format!("invalid regular expression: {error}"),
                                None,
                            );
                            continue;
                        }
                    },
                };
                Provider::Env { allowlist }
            }
            other => {
                diagnostics.error(
                    class,
                    format!("config provider class `{other}` is not supported"),
                    Some(format!(
                        "use one of the stock providers: {FILE_PROVIDER}, {DIRECTORY_PROVIDER}, {ENV_PROVIDER}"
                    )),
                );
                continue;
            }
        };
        providers.insert(name, provider);
    }
    providers
}

fn lookup(
    provider: &Provider,
    path: Option<&str>,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file_cache: &mut BTreeMap<PathBuf, Result<RawProperties, String>>,
    referenced_files: &mut Vec<PathBuf>,
) -> Result<String, String> {
    match provider {
        Provider::File { allowed_paths } => {
            let path = check_path(path, allowed_paths)?;
            referenced_files.push(path.clone());
            let file = file_cache
                .entry(path.clone())
                .or_insert_with(|| RawProperties::read(&path).map_err(|error| error.to_string()));
            let file = file.as_ref().map_err(Clone::clone)?;
            file.get(key)
                .map(|property| property.value.clone())
                .ok_or_else(|| format!("`{}` has no key `{key}`", path.display()))
        }
        Provider::Directory { allowed_paths } => {
            let directory = check_path(path, allowed_paths)?;
            // The key names a file *in* the directory: never a path that leaves it.
            if key.is_empty() || key == "." || key == ".." || key.contains('/') {
                return Err(format!(
                    "`{key}` is not a file name in `{}`",
                    directory.display()
                ));
            }
            let file = directory.join(key);
            referenced_files.push(file.clone());
            super::files::read_regular(&file, super::files::MAX_FILE_BYTES)
                .and_then(|bytes| {
                    String::from_utf8(bytes).map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                    })
                })
                .map_err(|error| format!("cannot read `{}`: {error}", file.display()))
        }
        Provider::Env { allowlist } => {
            if path.is_some_and(|p| !p.is_empty()) {
                return Err("the env provider takes no path: write `${env:VARIABLE}`".to_string());
            }
            if let Some(allowlist) = allowlist {
                if !allowlist.is_match(key) {
                    return Err(format!(
                        "environment variable `{key}` is not allowed by `allowlist.pattern`"
                    ));
                }
            }
            env(key).ok_or_else(|| format!("environment variable `{key}` is not set"))
        }
    }
}

fn check_path(path: Option<&str>, allowed_paths: &[PathBuf]) -> Result<PathBuf, String> {
    let path = match path {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => {
            return Err(
                "a file path is required, as in `${file:/etc/kafka/secrets.properties:key}`"
                    .to_string(),
            )
        }
    };
    // `..` is resolved before the check, as Kafka's allowed paths do (`Path.normalize()`), so
    // `/etc/secrets/../shadow` is not inside `/etc/secrets`.
    let path = normalize(&path);
    if !allowed_paths.is_empty()
        && !allowed_paths
            .iter()
            .any(|allowed| path.starts_with(normalize(allowed)))
    {
        return Err(format!("`{}` is outside `allowed.paths`", path.display()));
    }
    Ok(path)
}

/// `path` with `.` and `..` components resolved lexically (symlinks are not followed).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !path.is_absolute() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (provider class, allowed paths)
    type Provider<'a> = (&'a str, &'a str);

    fn provider<'a>(class: &'a str, allowed: &'a str) -> Provider<'a> {
        (class, allowed)
    }

    fn resolve_one(provider: Provider<'_>, value: &str) -> Result<String, String> {
        let mut props = RawProperties::from_pairs(vec![
            ("config.providers", "p"),
            ("config.providers.p.class", provider.0),
            ("config.providers.p.param.allowed.paths", provider.1),
            ("x", value),
        ]);
        let mut diagnostics = Diagnostics::new(PathBuf::from("t.properties"));
        resolve(&mut props, &mut diagnostics, &|_| None);
        if diagnostics.has_errors() {
            Err(diagnostics
                .into_sorted()
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n"))
        } else {
            Ok(props.get("x").unwrap().value.clone())
        }
    }

    #[test]
    fn dot_dot_cannot_leave_the_allowed_paths() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("secrets");
        std::fs::create_dir(&allowed).unwrap();
        std::fs::write(allowed.join("password"), "in").unwrap();
        std::fs::write(dir.path().join("outside"), "out").unwrap();
        let allowed_text = allowed.to_str().unwrap();
        let props = || provider(DIRECTORY_PROVIDER, allowed_text);
        let inside = format!("${{p:{}:password}}", allowed.display());
        assert_eq!(resolve_one(props(), &inside).unwrap(), "in");
        let escape = format!("${{p:{}/..:outside}}", allowed.display());
        assert!(resolve_one(props(), &escape)
            .unwrap_err()
            .contains("outside `allowed.paths`"));
        // The key is a file name in the directory, never a path out of it.
        for key in ["../outside", "/etc/passwd", ".."] {
            let placeholder = format!("${{p:{}:{key}}}", allowed.display());
            let error = resolve_one(props(), &placeholder).unwrap_err();
            assert!(error.contains("is not a file name"), "{key}: {error}");
        }
        let file_props = provider(FILE_PROVIDER, allowed_text);
        let escape = format!("${{p:{}/../outside:k}}", allowed.display());
        assert!(resolve_one(file_props, &escape)
            .unwrap_err()
            .contains("outside `allowed.paths`"));
    }

    #[test]
    fn a_fifo_or_device_is_refused_instead_of_hanging() {
        let props = || provider(DIRECTORY_PROVIDER, "/dev");
        let error = resolve_one(props(), "${p:/dev:zero}").unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
        let file = provider(FILE_PROVIDER, "/dev");
        let error = resolve_one(file, "${p:/dev/zero:key}").unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
    }
}
