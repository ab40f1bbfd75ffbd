//! `runner.1` and one `runner-<command>.1` per command, in roff, from `runner::cli::flags`:
//! the same table the parser and `--help` read.

use runner::cli::flags::{self, Arg, Cmd, GLOBALS, HELP, NAME, Opt, VERSION};

/// Text as roff on a filled line: backslashes, hyphens and quotes escaped, no line taken
/// for a request.
pub fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-").replace('\'', "\\(aq");
    if t.starts_with('.') { format!("\\&{t}") } else { t }
}

fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", roff(text))
}

/// `\fB\-n\fR, \fB\-\-lines\fR \fI<N>\fR`.
fn opt_term(o: &Opt) -> String {
    let mut t = String::new();
    if let Some(c) = o.short {
        t.push_str(&format!("{}, ", bold(&format!("-{c}"))));
    }
    t.push_str(&bold(&format!("--{}", o.long)));
    if let Some(v) = o.value {
        t.push_str(&format!(" \\fI<{}>\\fR", roff(v)));
    }
    t
}

fn opt_entries(w: &mut String, opts: &[&Opt]) {
    for o in opts {
        w.push_str(".TP\n");
        w.push_str(&opt_term(o));
        w.push('\n');
        w.push_str(&roff(&runner::cli::parse::right(o)));
        w.push('\n');
    }
}

fn arg_entries(w: &mut String, args: &[Arg]) {
    for a in args {
        w.push_str(".TP\n");
        let name = if a.default.is_some() { format!("[{}]", a.name) } else { format!("<{}>", a.name) };
        w.push_str(&format!("\\fI{}\\fR\n", roff(&name)));
        let help = match a.default {
            Some(d) => format!("{} (default: {d})", a.help),
            None => a.help.to_string(),
        };
        w.push_str(&roff(&help));
        w.push('\n');
    }
}

/// A help text kept as written: one output line per source line, nothing reflowed.
fn verbatim(w: &mut String, heading: &str, text: &str) {
    w.push_str(&format!(".SH {heading}\n.nf\n"));
    for line in text.lines() {
        w.push_str(&roff(line));
        w.push('\n');
    }
    w.push_str(".fi\n");
}

/// `[\fB\-c\fR|\fB\-\-config\fR \fI<FILE>\fR]` for each option, as the synopsis lists them.
fn synopsis_opts<'a>(opts: impl Iterator<Item = &'a Opt>) -> String {
    opts.map(|o| {
        let mut s = String::from("[");
        if let Some(c) = o.short {
            s.push_str(&format!("{}|", bold(&format!("-{c}"))));
        }
        s.push_str(&bold(&format!("--{}", o.long)));
        if let Some(v) = o.value {
            s.push_str(&format!(" \\fI<{}>\\fR", roff(v)));
        }
        if o.repeat {
            s.push_str("]...");
        } else {
            s.push(']');
        }
        s
    })
    .collect::<Vec<_>>()
    .join(" ")
}

fn header(w: &mut String, name: &str, about: &str) {
    w.push_str(&format!(".TH {} 1 \"\" \"{NAME} {}\"\n", roff(&name.to_uppercase()), env!("CARGO_PKG_VERSION")));
    w.push_str(&format!(".SH NAME\n{} \\- {}\n", roff(name), roff(about)));
}

/// The page of the program: its commands, options and exit codes.
pub fn program() -> String {
    let mut w = String::new();
    header(&mut w, NAME, flags::ABOUT);
    w.push_str(".SH SYNOPSIS\n");
    w.push_str(&format!(
        "{} {} \\fI<COMMAND>\\fR [\\fIOPTIONS\\fR]\n",
        bold(NAME),
        synopsis_opts(GLOBALS.iter().chain([&HELP, &VERSION]))
    ));
    w.push_str(&format!(".SH DESCRIPTION\n{}\n", roff(flags::ABOUT)));
    w.push_str(".SH OPTIONS\n");
    opt_entries(&mut w, &[&HELP, &VERSION]);
    w.push_str(".SH \"GLOBAL OPTIONS\"\n");
    w.push_str(&roff("Every command takes these, before or after its name."));
    w.push('\n');
    opt_entries(&mut w, &GLOBALS.iter().collect::<Vec<_>>());
    w.push_str(".SH COMMANDS\n");
    for c in flags::COMMANDS {
        w.push_str(&format!(".TP\n{}(1)\n{}\n", bold(&format!("{NAME}-{}", c.name)), roff(c.about)));
    }
    verbatim(&mut w, "\"EXIT STATUS\"", flags::EXIT_CODES);
    let refs: Vec<String> =
        flags::COMMANDS.iter().map(|c| format!("{}(1)", bold(&format!("{NAME}-{}", c.name)))).collect();
    w.push_str(&format!(".SH \"SEE ALSO\"\n{},\n{}(5)\n", refs.join(",\n"), bold("supervisor.yaml")));
    w
}

/// The page of one command, `runner-<command>(1)`, whose synopsis reads `runner <command>`.
pub fn command(c: &Cmd) -> String {
    let mut w = String::new();
    header(&mut w, &format!("{NAME}-{}", c.name), c.about);
    w.push_str(".SH SYNOPSIS\n");
    let mut syn = format!("{} {}", bold(&format!("{NAME} {}", c.name)), synopsis_opts(c.shown_opts()));
    for a in c.args {
        match a.default {
            Some(_) => syn.push_str(&format!(" [\\fI{}\\fR]", roff(a.name))),
            None => syn.push_str(&format!(" \\fI{}\\fR", roff(a.name))),
        }
    }
    w.push_str(&syn);
    w.push('\n');
    w.push_str(&format!(".SH DESCRIPTION\n{}\n", roff(c.about)));
    if !c.args.is_empty() {
        w.push_str(".SH ARGUMENTS\n");
        arg_entries(&mut w, c.args);
    }
    w.push_str(".SH OPTIONS\n");
    opt_entries(&mut w, &c.shown_opts().collect::<Vec<_>>());
    if c.globals {
        w.push_str(".SH \"GLOBAL OPTIONS\"\n");
        opt_entries(&mut w, &c.shown_globals().iter().collect::<Vec<_>>());
    }
    if !c.after_help.is_empty() {
        let heading = if c.after_help.starts_with("Exit codes") { "\"EXIT STATUS\"" } else { "NOTES" };
        verbatim(&mut w, heading, c.after_help);
    }
    w.push_str(&format!(".SH \"SEE ALSO\"\n{}(1)\n", bold(NAME)));
    w
}
