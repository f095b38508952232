//! Layered projects: an `.escrc` with `inherit: true` builds on the nearest `.escrc` above it,
//! which may inherit in turn (a monorepo's root sets the account, a service adds its settings,
//! a sub-directory its own role).
//!
//! Every file of the chain is read and checked for trust on its own; only then are they merged
//! into the one project the hook loads: the parents' environments first and the nearer file's
//! after them (one open for the whole chain), `values` merged with the nearer file winning,
//! `export`, `ttl`, `open-duration` and each `aws` key the nearest file's that writes them.
//! A file without `inherit` replaces everything above it, as before.

use std::path::{Path, PathBuf};

use crate::ground::fs::{FileId, FileStamp, SmallFile};
use crate::inputs::escrc::{self, AwsSettings, Escrc, EscrcError};
use crate::keeping::trust::{TrustStore, Verdict};
use crate::settings::state::{Link, TrustKeys};

/// Longer chains are refused: a real monorepo has a few levels, and every prompt that checks
/// the chain looks at each of them.
pub const MAX_DEPTH: usize = 16;

/// One file of a chain.
pub struct Layer {
    pub stamp: FileStamp,
    /// `None` when the file could not be read (`parsed` then says why).
    pub file: Option<SmallFile>,
    pub parsed: Result<Escrc, EscrcError>,
}

/// The files a directory's project is made of, nearest first.
pub struct Chain {
    pub layers: Vec<Layer>,
    /// Why the chain could not be followed to its end (`inherit: true` with no `.escrc` above,
    /// or too many levels).
    pub broken: Option<EscrcError>,
    /// The farthest file asks to inherit and nothing is above it: a file appearing there
    /// changes the project.
    pub seeks_parent: bool,
}

/// A file of the chain that trust does not let through.
pub struct Blocked<'c> {
    pub layer: &'c Layer,
    /// 0 for the nearest file.
    pub depth: usize,
    pub verdict: Verdict,
}

impl Layer {
    fn read(stamp: FileStamp) -> Layer {
        match escrc::read(&stamp.path) {
            Ok(file) => {
                let parsed = escrc::parse(&stamp.path, &file).map(|mut escrc| {
                    escrc.file_id = Some(file.id);
                    escrc
                });
                Layer {
                    stamp,
                    file: Some(file),
                    parsed,
                }
            }
            Err(error) => Layer {
                stamp,
                file: None,
                parsed: Err(error),
            },
        }
    }

    fn inherits(&self) -> bool {
        self.parsed.as_ref().is_ok_and(|escrc| escrc.inherit)
    }

    pub fn trust_keys(&self) -> Option<TrustKeys> {
        let file = self.file.as_ref()?;
        Some(TrustStore::keys(&self.stamp.path, file))
    }
}

impl Chain {
    /// Reads the file at `nearest` and, while a file says `inherit: true`, the nearest one
    /// above it. Local and cheap: nothing here is trusted yet, nothing touches the network.
    pub fn discover(nearest: FileStamp) -> Chain {
        let mut chain = Chain {
            layers: vec![Layer::read(nearest)],
            broken: None,
            seeks_parent: false,
        };
        while let Some(last) = chain.layers.last().filter(|layer| layer.inherits()) {
            let path = last.stamp.path.clone();
            let above = path
                .parent()
                .and_then(Path::parent)
                .and_then(escrc::find_nearest);
            let Some(above) = above else {
                chain.seeks_parent = true;
                chain.broken = Some(inherit_error(
                    last,
                    "inherit: true, but there is no .escrc above it",
                ));
                break;
            };
            if chain.layers.len() == MAX_DEPTH {
                chain.broken = Some(inherit_error(
                    last,
                    &format!("inherit: more than {MAX_DEPTH} .escrc files build on one another"),
                ));
                break;
            }
            chain.layers.push(Layer::read(above));
        }
        chain
    }

    pub fn nearest(&self) -> &Layer {
        &self.layers[0]
    }

    /// The parents, as the state remembers them.
    pub fn links(&self) -> Vec<Link> {
        self.layers[1..]
            .iter()
            .map(|layer| Link {
                stamp: layer.stamp.clone(),
                trust: layer.trust_keys(),
            })
            .collect()
    }

    /// The first file (nearest first) that is not allowed as it is, if any. Files that cannot
    /// be read have no trust to check; their error is the project's error.
    pub fn blocked(&self, store: &TrustStore) -> Option<Blocked<'_>> {
        self.layers.iter().enumerate().find_map(|(depth, layer)| {
            let verdict = store.verdict(&layer.stamp.path, layer.file.as_ref()?);
            (verdict != Verdict::Allowed).then_some(Blocked {
                layer,
                depth,
                verdict,
            })
        })
    }

    /// Every file of the chain that waits for an `allow` (not allowed as it is, not denied),
    /// nearest first.
    pub fn waiting(&self, store: &TrustStore) -> Vec<&Layer> {
        self.layers
            .iter()
            .filter(|layer| {
                layer.file.as_ref().is_some_and(|file| {
                    store.verdict(&layer.stamp.path, file) == Verdict::NotAllowed
                })
            })
            .collect()
    }

    /// The project the chain makes: its files merged from the farthest to the nearest.
    pub fn project(&self) -> Result<Escrc, EscrcError> {
        if let Some(error) = self.layers.iter().find_map(|l| l.parsed.as_ref().err()) {
            return Err(error.clone());
        }
        if let Some(error) = &self.broken {
            return Err(error.clone());
        }
        // From the farthest file down, each on top of what is above it.
        let mut merged: Option<Escrc> = None;
        for layer in self.layers.iter().rev() {
            let this = layer.parsed.as_ref().map_err(Clone::clone)?;
            let text = layer.file.as_deref().unwrap_or_default();
            merged = Some(match merged {
                None => this.clone(),
                Some(above) => layered(above, this, text)?,
            });
        }
        merged.map_or_else(|| self.nearest().parsed.clone(), Ok)
    }

    /// What messages call the project: its environments when the chain merges, else the
    /// nearest file's name for itself.
    pub fn label(&self) -> String {
        match (self.project(), &self.nearest().parsed) {
            (Ok(project), _) => project.label(),
            (Err(_), Ok(nearest)) => nearest.label(),
            (Err(_), Err(_)) => crate::ground::fs::home_relative(&self.nearest().stamp.path),
        }
    }

    /// The line that says why a blocked chain does not load, and what to run.
    /// When more than one file waits, every one is named, and a single `esc-hook allow
    /// --chain` trusts them all.
    pub fn blocked_message(
        &self,
        blocked: &Blocked,
        label: &str,
        store: &TrustStore,
    ) -> Option<String> {
        let waiting = self.waiting(store);
        if waiting.len() > 1 && blocked.verdict == Verdict::NotAllowed {
            let files: Vec<String> = waiting
                .iter()
                .map(|layer| crate::ground::fs::home_relative(&layer.stamp.path))
                .collect();
            return Some(format!(
                "{} files of this project wait to be allowed ({}): run `esc-hook allow --chain` to trust them all ({label})",
                files.len(),
                files.join(", ")
            ));
        }
        let (state, again) = match &blocked.verdict {
            Verdict::Allowed => return None,
            Verdict::Unsafe(problem) => return Some(problem.clone()),
            Verdict::NotAllowed => ("not allowed", ""),
            Verdict::Denied => ("denied", " again"),
        };
        Some(match blocked.depth {
            0 => format!(".escrc is {state}: run `esc-hook allow` to trust it{again} ({label})"),
            _ => {
                let parent = crate::ground::fs::home_relative(&blocked.layer.stamp.path);
                format!(
                    "{parent} is {state}, and .escrc builds on it: run `esc-hook allow {}` to trust it{again} ({label})",
                    shown_path(&parent)
                )
            }
        })
    }
}

/// Why a command does not run with a chain's project.
pub enum Refused {
    /// The nearest file's own verdict (the caller says it in its own words).
    Nearest(Verdict),
    /// A parent is not allowed: the whole line to show.
    Parent(String),
    /// A file of the chain cannot be read or used.
    Invalid(EscrcError),
}

/// The project at `nearest` when every file of its chain is allowed as it is.
pub fn allowed_project(nearest: FileStamp, store: &TrustStore) -> Result<Escrc, Refused> {
    let chain = Chain::discover(nearest);
    if chain.nearest().file.is_some()
        && let Some(blocked) = chain.blocked(store)
    {
        if blocked.depth == 0 {
            return Err(Refused::Nearest(blocked.verdict));
        }
        let label = chain.label();
        let message = chain
            .blocked_message(&blocked, &label, store)
            .unwrap_or_default();
        return Err(Refused::Parent(message));
    }
    chain.project().map_err(Refused::Invalid)
}

/// Whether the parents a state remembers are still the chain above the file at `nearest`
/// (whose own identity the caller has compared): each still the nearest `.escrc` above the
/// one below it, unchanged, and nothing above the farthest when it sought a parent. A few
/// `stat` calls per level, none for a file that does not inherit.
pub fn unchanged(nearest: &Path, parents: &[Link], seeks_parent: bool) -> bool {
    let above = |path: &Path| {
        path.parent()
            .and_then(Path::parent)
            .and_then(escrc::find_nearest)
    };
    let mut below = nearest;
    for link in parents {
        if above(below).as_ref() != Some(&link.stamp) {
            return false;
        }
        below = &link.stamp.path;
    }
    !seeks_parent || above(below).is_none()
}

/// A home-relative path as the user would type it: `~/…` stays unquoted (the shell expands
/// it), anything else that a shell would split is quoted.
pub fn shown_path(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) if shell_words::quote(rest) == rest => path.to_string(),
        Some(rest) => format!("~/{}", shell_words::quote(rest)),
        None => shell_words::quote(path).into_owned(),
    }
}

fn inherit_error(layer: &Layer, message: &str) -> EscrcError {
    let text = layer.file.as_deref().unwrap_or_default();
    EscrcError {
        path: layer.stamp.path.clone(),
        position: escrc::line_of_top_level_key(&String::from_utf8_lossy(text), "inherit"),
        message: message.to_string(),
    }
}

/// `child` (whose file holds `text`) on top of `parent`.
fn layered(mut parent: Escrc, child: &Escrc, text: &[u8]) -> Result<Escrc, EscrcError> {
    // A problem with the chain's environments, at the child's `environment:` line.
    let environment_error = |message: String| EscrcError {
        path: child.path.clone(),
        position: escrc::line_of_top_level_key(&String::from_utf8_lossy(text), "environment"),
        message,
    };
    if let (Some(above), Some(here)) = (parent.environments.first(), child.environments.first())
        && above.org != here.org
    {
        return Err(environment_error(format!(
            "environment: `{here}` is in organization `{}`, but {} opens environments of `{}`: a layered project opens in one organization",
            here.org,
            crate::ground::fs::home_relative(&parent.path),
            above.org
        )));
    }
    let opened = parent.environments.len() + child.environments.len();
    if opened > escrc::MAX_ENVIRONMENTS {
        return Err(environment_error(format!(
            "environment: with the files it builds on, this project opens {opened}: at most {} environments are opened together",
            escrc::MAX_ENVIRONMENTS
        )));
    }
    let parent_dir = parent.path.parent().map(Path::to_path_buf);
    let parent_file = parent.file_id;
    // The parent's values keep naming the file they are written in.
    for name in parent.values.keys() {
        if !parent.value_files.contains_key(name) {
            parent.value_files.insert(name.clone(), parent.path.clone());
        }
    }
    let mut merged = parent;
    merged.path = child.path.clone();
    merged
        .environments
        .extend(child.environments.iter().cloned());
    merged.open_duration = child.open_duration.or(merged.open_duration);
    merged.ttl = child.ttl.or(merged.ttl);
    if child.export_given {
        merged.export = child.export.clone();
        merged.export_given = true;
    }
    for (name, value) in &child.values {
        merged.values.insert(name.clone(), value.clone());
        merged.value_files.remove(name);
        match child.value_lines.get(name) {
            Some(line) => merged.value_lines.insert(name.clone(), *line),
            None => merged.value_lines.remove(name),
        };
    }
    merged.aws = match (merged.aws.take(), &child.aws) {
        (None, child) => child.clone(),
        (Some(above), None) => Some(with_dir(above, parent_dir.as_deref(), parent_file)),
        (Some(above), Some(here)) => {
            let above = with_dir(above, parent_dir.as_deref(), parent_file);
            Some(AwsSettings {
                region: here.region.clone().or(above.region),
                assume_role: here.assume_role.clone().or(above.assume_role),
                web_identity: here.web_identity.clone().or(above.web_identity),
                credentials: here.credentials.or(above.credentials),
            })
        }
    };
    merged.allow_names.extend(child.allow_names.iter().cloned());
    merged.inherit = child.inherit;
    Ok(merged)
}

/// A parent's `aws.web-identity` keeps reading its token file and running its token command
/// where that parent is.
fn with_dir(mut aws: AwsSettings, dir: Option<&Path>, file: Option<FileId>) -> AwsSettings {
    if let Some(web) = &mut aws.web_identity
        && web.dir.is_none()
    {
        web.dir = dir.map(PathBuf::from);
        web.dir_file = file;
    }
    aws
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Duration;

    fn write(dir: &Path, text: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(".escrc"), text).unwrap();
    }

    fn chain_at(dir: &Path) -> Chain {
        Chain::discover(escrc::find_nearest(dir).unwrap())
    }

    #[test]
    fn a_three_level_chain_merges_nearest_winning() {
        let root = tempfile::tempdir().unwrap();
        let mono = root.path().join("mono");
        write(
            &mono,
            "environment: acme/aws/dev\nttl: 50m\nexport: ['AWS_*']\nvalues:\n  TEAM: core\n  LEVEL: root\naws:\n  region: eu-west-1\n",
        );
        let service = mono.join("services/pay");
        write(
            &service,
            "inherit: true\nenvironment: acme/payments/dev@stable\nvalues:\n  LEVEL: service\n  SERVICE: pay\n",
        );
        let deploy = service.join("deploy");
        write(
            &deploy,
            "inherit: true\nexport: ['*']\nvalues:\n  LEVEL: deploy\naws:\n  assume-role:\n    role-arn: arn:aws:iam::1:role/deploy\n",
        );
        let chain = chain_at(&deploy.join("sub"));
        assert_eq!(chain.layers.len(), 3);
        let project = chain.project().unwrap();
        assert_eq!(
            project.label(),
            "acme/aws/dev + acme/payments/dev@stable",
            "the parents' environments first"
        );
        assert_eq!(project.path, deploy.join(".escrc"));
        assert_eq!(project.ttl, Some(Duration::from_secs(3000)));
        assert_eq!(project.values["LEVEL"], "deploy");
        assert_eq!(project.values["SERVICE"], "pay");
        assert_eq!(project.values["TEAM"], "core");
        assert_eq!(project.file_of_value("TEAM"), mono.join(".escrc"));
        assert_eq!(project.file_of_value("SERVICE"), service.join(".escrc"));
        assert_eq!(project.file_of_value("LEVEL"), deploy.join(".escrc"));
        assert!(project.export.allows("PORT"), "the child's export");
        let aws = project.aws.unwrap();
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert!(aws.assume_role.is_some());
        // From the service alone: the root's export, and no role.
        let service_project = chain_at(&service).project().unwrap();
        assert!(!service_project.export.allows("PORT"));
        assert!(service_project.aws.unwrap().assume_role.is_none());
    }

    #[test]
    fn a_file_without_inherit_stands_alone() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "environment: acme/aws/dev\n");
        write(&root.path().join("a"), "values: {A: 1}\n");
        let chain = chain_at(&root.path().join("a"));
        assert_eq!(chain.layers.len(), 1);
        assert!(chain.project().unwrap().environments.is_empty());
    }

    #[test]
    fn broken_chains_name_the_file() {
        let root = tempfile::tempdir().unwrap();
        // Nothing above: a chain that starts here, up to the first `.escrc` above, whose last
        // file inherits with nothing above it.
        write(root.path(), "values: {A: 1}\ninherit: true\n");
        assert!(
            root.path().parent().and_then(escrc::find_nearest).is_none(),
            "the temporary directory must have no .escrc above it"
        );
        let chain = chain_at(root.path());
        assert_eq!(chain.layers.len(), 1);
        assert!(chain.seeks_parent);
        let error = chain.project().unwrap_err();
        assert!(error.message.contains("no .escrc above"), "{error}");
        assert_eq!(error.position.map(|p| p.0), Some(2));
        // Another organization below.
        write(root.path(), "environment: acme/aws/dev\n");
        write(
            &root.path().join("x"),
            "inherit: true\nenvironment: globex/app/dev\n",
        );
        let error = chain_at(&root.path().join("x")).project().unwrap_err();
        assert!(
            error
                .message
                .contains("`globex/app/dev` is in organization `globex`")
        );
        assert_eq!(error.path, root.path().join("x/.escrc"));
        // A parent that does not parse: its own error.
        write(root.path(), "environment: acme/aws\n");
        let error = chain_at(&root.path().join("x")).project().unwrap_err();
        assert_eq!(error.path, root.path().join(".escrc"));
    }

    #[test]
    fn a_chain_opens_at_most_sixteen_environments_in_all() {
        let root = tempfile::tempdir().unwrap();
        let list = |from: usize, n: usize| {
            let names: Vec<String> = (from..from + n).map(|i| format!("acme/p/e{i}")).collect();
            format!("[{}]", names.join(", "))
        };
        write(root.path(), &format!("environment: {}\n", list(0, 10)));
        let child = root.path().join("x");
        write(
            &child,
            &format!("inherit: true\nenvironment: {}\n", list(10, 6)),
        );
        assert_eq!(chain_at(&child).project().unwrap().environments.len(), 16);
        write(
            &child,
            &format!("inherit: true\nenvironment: {}\n", list(10, 7)),
        );
        let error = chain_at(&child).project().unwrap_err();
        assert!(error.message.contains("opens 17: at most 16"), "{error}");
        assert_eq!(error.path, child.join(".escrc"));
        assert_eq!(error.position.map(|p| p.0), Some(2));
    }

    #[test]
    fn a_parents_web_identity_keeps_its_directory() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "aws:\n  web-identity:\n    role-arn: arn:aws:iam::1:role/ci\n    token-file: token\n",
        );
        write(
            &root.path().join("app"),
            "inherit: true\naws:\n  region: eu-west-1\n",
        );
        let project = chain_at(&root.path().join("app")).project().unwrap();
        let aws = project.aws.unwrap();
        assert_eq!(aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(aws.web_identity.unwrap().dir.as_deref(), Some(root.path()));
    }

    #[test]
    fn paths_are_shown_as_typed() {
        assert_eq!(shown_path("~/mono/.escrc"), "~/mono/.escrc");
        assert_eq!(shown_path("~/my mono/.escrc"), "~/'my mono/.escrc'");
        assert_eq!(shown_path("/srv/a b/.escrc"), "'/srv/a b/.escrc'");
    }
}
