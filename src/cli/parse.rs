//! Arguments to [`Matches`], driven by the tables in `cli::flags`, and the text people read
//! about them: `--help` for the program and each command, and usage errors (exit 2) with a
//! "did you mean" where a name is close to a known one.
//!
//! It only checks what the tables say (names, values wanted, choices, repeats, requirements,
//! required arguments); turning values into durations or numbers is the caller's step.
//! Tokens come from `lexopt`: `--long=value`, `-n5`, `-fn 5` and `--` all work as usual.

use std::ffi::{OsStr, OsString};
use std::fmt;

use super::flags::{self, Cmd, GLOBALS, HELP, NAME, Opt, VERSION};

/// The message of the usage error for no command at all (`runner` alone prints the help).
pub const NO_COMMAND: &str = "a command is required";

/// What the arguments ask for.
#[derive(Debug)]
pub enum Parsed {
    Run(Matches),
    /// `--help`, `-h` or `help [COMMAND]`: the program's help, or a command's.
    Help(Option<&'static Cmd>),
    Version,
}

/// A command and the options and arguments given to it, as the table defines them.
#[derive(Debug)]
pub struct Matches {
    pub cmd: &'static Cmd,
    given: Vec<(&'static Opt, Option<OsString>)>,
    args: Vec<OsString>,
}

/// A usage error: printed on stderr with the usage line, exit status 2.
#[derive(Debug)]
pub struct Usage {
    pub message: String,
    pub tip: Option<String>,
    /// The command the error is about; `None` for the program.
    pub cmd: Option<&'static Cmd>,
}

impl Usage {
    pub fn new(cmd: Option<&'static Cmd>, message: impl Into<String>) -> Usage {
        Usage { message: message.into(), tip: None, cmd }
    }

    fn tip(mut self, tip: Option<String>) -> Usage {
        self.tip = tip;
        self
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if let Some(t) = &self.tip {
            writeln!(f, "\n  tip: {t}")?;
        }
        let (usage, more) = match self.cmd {
            Some(c) => (c.usage(), format!("{NAME} {} --help", c.name)),
            None => (format!("{NAME} [OPTIONS] <COMMAND>"), format!("{NAME} --help")),
        };
        write!(f, "\nUsage: {usage}\n\nFor more information, try '{more}'.")
    }
}

/// `--long <VALUE>` as help and errors show it.
fn shown(o: &Opt) -> String {
    match o.value {
        Some(v) => format!("--{} <{v}>", o.long),
        None => format!("--{}", o.long),
    }
}

fn did_you_mean<'a>(got: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    crate::suggest::closest(got, known)
}

/// Parses `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, Usage> {
    use lexopt::Arg as A;
    let mut p = lexopt::Parser::from_args(args);
    let mut cmd: Option<&'static Cmd> = None;
    let mut given: Vec<(&'static Opt, Option<OsString>)> = Vec::new();
    let mut args: Vec<OsString> = Vec::new();
    let mut help_for = false;
    loop {
        let tok = p.next().map_err(|e| lexopt_error(e, cmd))?;
        let Some(tok) = tok else { break };
        let (opt, typed) = match tok {
            A::Value(v) => {
                match cmd {
                    None if help_for => return help_of(&v),
                    None if v == "help" => help_for = true,
                    None => cmd = Some(command_named(&v)?),
                    Some(c) => {
                        if args.len() == c.args.len() {
                            let msg = format!("unexpected argument '{}'", v.to_string_lossy());
                            return Err(Usage::new(cmd, msg));
                        }
                        args.push(v);
                    }
                }
                continue;
            }
            A::Short(c) => (find(cmd, |o| o.short == Some(c)), format!("-{c}")),
            A::Long(l) => (find(cmd, |o| o.long == l), format!("--{l}")),
        };
        let Some(opt) = opt else {
            let name = typed.trim_start_matches('-');
            let tip = did_you_mean(name, candidates(cmd).map(|o| o.long)).map(|m| format!("did you mean '--{m}'?"));
            return Err(Usage::new(cmd, format!("unknown option '{typed}'")).tip(tip));
        };
        if opt.long == HELP.long {
            return Ok(Parsed::Help(cmd));
        }
        if opt.long == VERSION.long {
            return Ok(Parsed::Version);
        }
        let value = match opt.value {
            Some(_) => Some(p.value().map_err(|_| Usage::new(cmd, format!("'{}' needs a value", shown(opt))))?),
            None => {
                if let Some(v) = typed.starts_with("--").then(|| p.optional_value()).flatten() {
                    let msg = format!("'--{}' takes no value (got '{}')", opt.long, v.to_string_lossy());
                    return Err(Usage::new(cmd, msg));
                }
                None
            }
        };
        if let Some(v) = &value
            && !opt.choices.is_empty()
        {
            let v = v.to_string_lossy();
            if !opt.choices.contains(&v.as_ref()) {
                let close = did_you_mean(&v, opt.choices.iter().copied());
                let tip = format!(
                    "{}possible values: {}",
                    close.map(|c| format!("did you mean '{c}'? ")).unwrap_or_default(),
                    opt.choices.join(", ")
                );
                return Err(Usage::new(cmd, format!("invalid value '{v}' for '{}'", shown(opt))).tip(Some(tip)));
            }
        }
        if !opt.repeat && given.iter().any(|(o, _)| o.long == opt.long) {
            return Err(Usage::new(cmd, format!("'{}' was given more than once", shown(opt))));
        }
        given.push((opt, value));
    }
    if help_for {
        // `runner help` alone.
        return Ok(Parsed::Help(None));
    }
    let Some(cmd) = cmd else {
        return Err(Usage::new(None, NO_COMMAND).tip(Some(format!(
            "the commands are {}",
            flags::COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        ))));
    };
    if let Some(missing) = cmd.args.get(args.len()).filter(|a| a.default.is_none()) {
        return Err(Usage::new(Some(cmd), format!("the argument <{}> is required", missing.name)));
    }
    for (o, _) in &given {
        if let Some(r) = o.requires
            && !given.iter().any(|(g, _)| g.long == r)
        {
            return Err(Usage::new(Some(cmd), format!("'{}' is only used with '--{r}'", shown(o))));
        }
    }
    Ok(Parsed::Run(Matches { cmd, given, args }))
}

fn command_named(v: &OsStr) -> Result<&'static Cmd, Usage> {
    let name = v.to_string_lossy();
    if let Some(c) = flags::command(&name) {
        return Ok(c);
    }
    let tip = did_you_mean(&name, flags::COMMANDS.iter().map(|c| c.name).chain(["help"]))
        .map(|m| format!("did you mean '{m}'?"));
    Err(Usage::new(None, format!("unknown command '{name}'")).tip(tip))
}

/// `runner help` then a word: `help` itself is not in the table, so it is handled here.
fn help_of(v: &OsStr) -> Result<Parsed, Usage> {
    match v.to_str() {
        Some("help") => Ok(Parsed::Help(None)),
        _ => command_named(v).map(|c| Parsed::Help(Some(c))),
    }
}

/// Every option accepted where `cmd` is (the program's, before a command).
fn candidates(cmd: Option<&'static Cmd>) -> impl Iterator<Item = &'static Opt> {
    let own: &'static [Opt] = cmd.map_or(&[], |c| c.opts);
    let top: &'static [Opt] = if cmd.is_none() { std::slice::from_ref(&VERSION) } else { &[] };
    own.iter().chain(GLOBALS).chain(std::iter::once(&HELP)).chain(top)
}

fn find(cmd: Option<&'static Cmd>, pred: impl Fn(&Opt) -> bool) -> Option<&'static Opt> {
    candidates(cmd).find(|o| pred(o))
}

fn lexopt_error(e: lexopt::Error, cmd: Option<&'static Cmd>) -> Usage {
    // `--help=x` or `--json=x` reach here when the next token is asked for.
    Usage::new(cmd, e.to_string())
}

impl Matches {
    fn opt(&self, long: &str) -> &'static Opt {
        candidates(Some(self.cmd))
            .find(|o| o.long == long)
            .unwrap_or_else(|| unreachable!("bug: --{long} is not in the table for `{}`", self.cmd.name))
    }

    /// Whether the switch was given.
    pub fn flag(&self, long: &str) -> bool {
        let o = self.opt(long);
        self.given.iter().any(|(g, _)| g.long == o.long)
    }

    /// The option's value: the last given, else its environment variable (when set and not
    /// empty), else its default.
    pub fn os(&self, long: &str) -> Option<OsString> {
        let o = self.opt(long);
        let given = self.given.iter().rev().find(|(g, _)| g.long == o.long).and_then(|(_, v)| v.clone());
        given
            .or_else(|| o.env.and_then(std::env::var_os).filter(|v| !v.is_empty()))
            .or_else(|| o.default.map(OsString::from))
    }

    /// Every value given, in order (a repeatable option).
    pub fn all(&self, long: &str) -> Vec<OsString> {
        let o = self.opt(long);
        self.given.iter().filter(|(g, _)| g.long == o.long).filter_map(|(_, v)| v.clone()).collect()
    }

    /// The option's value as text; a usage error if it is not UTF-8.
    pub fn text(&self, long: &str) -> Result<Option<String>, Usage> {
        self.os(long).map(|v| utf8(self.cmd, &shown(self.opt(long)), v)).transpose()
    }

    /// The option's value parsed by `f`; its error becomes a usage error naming the option.
    pub fn parsed<T>(&self, long: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, Usage> {
        let Some(v) = self.text(long)? else { return Ok(None) };
        let o = self.opt(long);
        f(&v).map(Some).map_err(|e| Usage::new(Some(self.cmd), format!("invalid value '{v}' for '{}': {e}", shown(o))))
    }

    /// The positional argument `i`, or its default.
    pub fn arg(&self, i: usize) -> OsString {
        let a = self.cmd.args.get(i).unwrap_or_else(|| unreachable!("bug: `{}` has no argument {i}", self.cmd.name));
        self.args.get(i).cloned().or_else(|| a.default.map(OsString::from)).unwrap_or_default()
    }

    /// The positional argument `i` as text.
    pub fn arg_text(&self, i: usize) -> Result<String, Usage> {
        utf8(self.cmd, &format!("<{}>", self.cmd.args[i].name), self.arg(i))
    }
}

fn utf8(cmd: &'static Cmd, what: &str, v: OsString) -> Result<String, Usage> {
    v.into_string().map_err(|v| Usage::new(Some(cmd), format!("invalid UTF-8 in {what}: {}", v.to_string_lossy())))
}

/// `--help` for the program (`None`) or a command.
pub fn help(cmd: Option<&Cmd>) -> String {
    let mut s = String::new();
    match cmd {
        None => {
            s.push_str(&format!("{}\n\nUsage: {NAME} [OPTIONS] <COMMAND>\n\nCommands:\n", flags::ABOUT));
            let help_line = ("help", "Print this message or the help of the given command");
            let rows: Vec<(String, &str)> = flags::COMMANDS
                .iter()
                .map(|c| (c.name, c.about))
                .chain([help_line])
                .map(|(n, a)| (format!("  {n}"), a))
                .collect();
            table(&mut s, &rows);
            section(&mut s, "Options", [&HELP, &VERSION].into_iter());
            section(&mut s, flags::GLOBAL, GLOBALS.iter());
            s.push('\n');
            s.push_str(flags::EXIT_CODES);
        }
        Some(c) => {
            s.push_str(&format!("{}\n\nUsage: {}\n", c.about, c.usage()));
            if !c.args.is_empty() {
                s.push_str("\nArguments:\n");
                let rows: Vec<(String, String)> = c
                    .args
                    .iter()
                    .map(|a| {
                        let name = if a.default.is_some() { format!("[{}]", a.name) } else { format!("<{}>", a.name) };
                        let help = match a.default {
                            Some(d) => format!("{} [default: {d}]", a.help),
                            None => a.help.to_string(),
                        };
                        (format!("  {name}"), help)
                    })
                    .collect();
                table(&mut s, &rows);
            }
            section(&mut s, "Options", c.shown_opts());
            section(&mut s, flags::GLOBAL, c.shown_globals().iter());
            if !c.after_help.is_empty() {
                s.push('\n');
                s.push_str(c.after_help);
            }
        }
    }
    s.push('\n');
    s
}

/// The left column of an option: `  -n, --lines <N>` or `      --json`.
pub fn left(o: &Opt) -> String {
    match o.short {
        Some(c) => format!("  -{c}, {}", shown(o)),
        None => format!("      {}", shown(o)),
    }
}

/// The help of an option with its choices, environment variable and default.
pub fn right(o: &Opt) -> String {
    let mut r = o.help.to_string();
    if !o.choices.is_empty() {
        r.push_str(&format!(" [possible values: {}]", o.choices.join(", ")));
    }
    if let Some(e) = o.env {
        r.push_str(&format!(" [env: {e}]"));
    }
    if let Some(d) = o.default {
        r.push_str(&format!(" [default: {d}]"));
    }
    r
}

fn section<'a>(s: &mut String, heading: &str, opts: impl Iterator<Item = &'a Opt>) {
    let rows: Vec<(String, String)> = opts.map(|o| (left(o), right(o))).collect();
    if rows.is_empty() {
        return;
    }
    s.push_str(&format!("\n{heading}:\n"));
    table(s, &rows);
}

/// Two columns, the second aligned two spaces after the widest first.
fn table(s: &mut String, rows: &[(String, impl AsRef<str>)]) {
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (l, r) in rows {
        s.push_str(&format!("{l:width$}  {}\n", r.as_ref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Parsed, Usage> {
        parse(args.iter().map(OsString::from))
    }

    fn matches(args: &[&str]) -> Matches {
        match run(args) {
            Ok(Parsed::Run(m)) => m,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn options_take_the_usual_forms_anywhere() {
        let m = matches(&["-c", "/x.yaml", "logs", "-fn5", "--kind=run", "--since", "-1h", "--state-dir=/s"]);
        assert_eq!(m.cmd.name, "logs");
        assert!(m.flag("follow"));
        assert_eq!(m.text("lines").unwrap().as_deref(), Some("5"));
        assert_eq!(m.text("kind").unwrap().as_deref(), Some("run"));
        assert_eq!(m.text("since").unwrap().as_deref(), Some("-1h"));
        assert_eq!(m.os("config"), Some("/x.yaml".into()));
        assert_eq!(m.os("state-dir"), Some("/s".into()));
        assert_eq!(m.os("runtime-dir"), None);
        let m = matches(&["metrics", "--path", "/", "--path=/var", "--process", "nginx"]);
        assert_eq!(m.all("path"), ["/", "/var"]);
        assert_eq!(m.text("interval").unwrap().as_deref(), Some("1s"), "the default");
        let m = matches(&["enqueue", "outbox"]);
        assert_eq!((m.arg_text(0).unwrap(), m.arg_text(1).unwrap()), ("outbox".into(), "-".into()));
        let m = matches(&["calendar", "--", "-1 * * * *"]);
        assert_eq!(m.arg_text(0).unwrap(), "-1 * * * *");
    }

    #[test]
    fn help_and_version_win() {
        assert!(matches!(run(&["--help"]), Ok(Parsed::Help(None))));
        assert!(matches!(run(&["help"]), Ok(Parsed::Help(None))));
        assert!(matches!(run(&["logs", "-h"]), Ok(Parsed::Help(Some(c))) if c.name == "logs"));
        assert!(matches!(run(&["help", "once"]), Ok(Parsed::Help(Some(c))) if c.name == "once"));
        assert!(matches!(run(&["-V"]), Ok(Parsed::Version)));
    }

    #[test]
    fn mistakes_are_named_with_the_closest_fix() {
        let e = |args: &[&str]| run(args).err().unwrap_or_else(|| panic!("{args:?} parsed"));
        let u = e(&["lgs"]);
        assert_eq!((u.message.as_str(), u.tip.as_deref()), ("unknown command 'lgs'", Some("did you mean 'logs'?")));
        let u = e(&["logs", "--josn"]);
        assert_eq!(u.tip.as_deref(), Some("did you mean '--json'?"));
        assert!(e(&["logs", "--kind", "rum"]).tip.unwrap().starts_with("did you mean 'run'? possible values: run,"));
        assert!(e(&["once"]).message.contains("<JOB> is required"));
        assert!(e(&["queue", "q", "--interval", "5s"]).message.contains("only used with '--watch'"));
        assert!(e(&["status", "extra"]).message.contains("unexpected argument 'extra'"));
        assert!(e(&["status", "--json", "--json"]).message.contains("more than once"));
        assert!(e(&["status", "--json=yes"]).message.contains("takes no value"));
        assert!(e(&["logs", "--job"]).message.contains("'--job <JOB>' needs a value"));
        assert!(e(&["status", "-V"]).message.contains("unknown option '-V'"), "--version only before a command");
        assert!(e(&[]).message.contains("a command is required"));
    }
}
