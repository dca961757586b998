//! Console output: verbosity, coloured status lines and progress bars. Everything the user
//! sees goes through here so `--quiet` and `--verbose` mean the same in every command.

use std::sync::OnceLock;

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

static VERBOSITY: OnceLock<Verbosity> = OnceLock::new();

pub fn init(v: Verbosity) {
    let _ = VERBOSITY.set(v);
}

pub fn verbosity() -> Verbosity {
    if MUTED.load(std::sync::atomic::Ordering::Relaxed) {
        return Verbosity::Quiet;
    }
    *VERBOSITY.get().unwrap_or(&Verbosity::Normal)
}

static MUTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs `f` with the process's output off — status, result and warning lines and progress
/// bars — for work whose own console output would mislead: `weightlab plugin test`'s inner runs
/// print nothing of their own (their report paths are gone when the test ends).
pub fn muted<T>(f: impl FnOnce() -> T) -> T {
    let before = MUTED.swap(true, std::sync::atomic::Ordering::Relaxed);
    let out = f();
    MUTED.store(before, std::sync::atomic::Ordering::Relaxed);
    out
}

const GREEN: &str = "1;32";
const YELLOW: &str = "1;33";
const RED: &str = "1;31";

/// Whether status lines are coloured: `--color always|never`, else not when `NO_COLOR` is set
/// (no-color.org) or stderr is not a terminal (a log file, CI), else yes.
static COLOR: OnceLock<bool> = OnceLock::new();

/// Sets colouring from `--color` (`auto`, `always`, `never`); call once, before printing.
pub fn init_color(choice: &str) {
    let on = match choice {
        "always" => true,
        "never" => false,
        _ => std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let _ = COLOR.set(on);
}

fn color() -> bool {
    *COLOR.get_or_init(|| std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::IsTerminal::is_terminal(&std::io::stderr()))
}

/// `text` in ANSI style `style` when colouring is on.
fn paint(style: &str, text: &str) -> String {
    if color() { format!("\x1b[{style}m{text}\x1b[0m") } else { text.to_string() }
}

/// `text` without the control characters that act on a terminal (escape sequences, carriage
/// returns, bidirectional overrides), newlines and tabs kept. Every line printed here goes
/// through it: what it shows may quote a plugin, a manifest or a run folder from elsewhere.
pub fn plain(text: &str) -> String {
    weightlab_host::untrusted::text(text, usize::MAX)
}

/// A status line such as `   Training zoo cnn`, printed unless `--quiet`.
pub fn status(verb: &str, what: &str) {
    if verbosity() >= Verbosity::Normal {
        eprintln!("{} {}", paint(GREEN, &format!("{verb:>12}")), plain(what));
    }
}

/// A status line printed even with `--quiet`: where the result is (a quiet run still says
/// where its report went).
pub fn result(verb: &str, what: &str) {
    if MUTED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    eprintln!("{} {}", paint(GREEN, &format!("{verb:>12}")), plain(what));
}

/// A status line in yellow, printed even with `--quiet`: the run did not end as it was meant
/// to (interrupted), and what the reader can do about it.
pub fn notice(verb: &str, what: &str) {
    if MUTED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    eprintln!("{} {}", paint(YELLOW, &format!("{verb:>12}")), plain(what));
}

/// Detail printed only with `--verbose`.
pub fn detail(what: &str) {
    if verbosity() >= Verbosity::Verbose {
        eprintln!("{:>12} {}", "", plain(what));
    }
}

pub fn warn(what: &str) {
    if verbosity() >= Verbosity::Normal {
        eprintln!("{}: {}", paint(YELLOW, "warning"), plain(what));
    }
}

pub fn error(what: &str) {
    eprintln!("{}: {}", paint(RED, "error"), plain(what));
}

/// A progress bar with rate and ETA; hidden when `--quiet`. When stderr is not a terminal (a
/// log file, a Slurm job's output) it is a plain line every 30 s instead ([`LogLines`]).
pub fn bar(len: u64, what: &str, unit: &str) -> ProgressBar {
    if verbosity() == Verbosity::Quiet {
        return ProgressBar::hidden();
    }
    let pb = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ProgressBar::new(len)
    } else {
        ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::term_like_with_hz(Box::new(LogLines::default()), 1))
    };
    let template = format!("{{prefix:>12.cyan.bold}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{rate}}, ETA {{eta}}) {{msg}}");
    let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar());
    // `591.3/s`, not indicatif's `591.2926/s`.
    let style = style.with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.1}/s", state.per_sec());
    });
    pb.set_style(style.progress_chars("=> "));
    pb.set_prefix(what.to_string());
    pb
}

/// How often a progress bar writes a line into a log (stderr not a terminal): every 30 s, or
/// every `WEIGHTLAB_PROGRESS_EVERY` seconds.
fn log_every() -> std::time::Duration {
    static EVERY: OnceLock<std::time::Duration> = OnceLock::new();
    *EVERY.get_or_init(|| {
        let given = std::env::var("WEIGHTLAB_PROGRESS_EVERY").ok().and_then(|v| v.trim().parse::<f64>().ok());
        given.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()).unwrap_or(std::time::Duration::from_secs(30))
    })
}

/// A progress bar's target in a log: a job's output file has no cursor to redraw a bar with,
/// and without one an hour-long fit is an hour of silence after `Running method …`. Every
/// [`log_every`] the bar's current line is written out whole (position, rate, ETA); a stage
/// that ends sooner writes nothing.
#[derive(Debug)]
struct LogLines {
    last: std::sync::Mutex<std::time::Instant>,
}

impl Default for LogLines {
    fn default() -> Self {
        Self { last: std::sync::Mutex::new(std::time::Instant::now()) }
    }
}

impl LogLines {
    fn line(&self, text: &str) {
        let Ok(mut last) = self.last.lock() else { return };
        if last.elapsed() >= log_every() && !text.trim().is_empty() && verbosity() >= Verbosity::Normal {
            eprintln!("{}", plain(text.trim_end()));
            *last = std::time::Instant::now();
        }
    }
}

impl indicatif::TermLike for LogLines {
    fn width(&self) -> u16 {
        120
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, text: &str) -> std::io::Result<()> {
        self.line(text);
        Ok(())
    }
    fn write_str(&self, text: &str) -> std::io::Result<()> {
        self.line(text);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}
