//! The interactive prompt of `zerobus sql` on a terminal: lines are gathered until one
//! ends with `;`, then the statements run; an error is printed and the prompt goes on.
//! `\q` (or `quit`, `exit`, Ctrl-D) leaves; Ctrl-C drops the statement being typed.

use std::io::Write;

use datafusion::prelude::SessionContext;
use datafusion::sql::parser::DFParser;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use crate::error::{CliResult, Context};
use crate::sql::{run_statement, OutputFormat};

const PROMPT: &str = "zerobus> ";
const CONTINUATION: &str = "      -> ";

/// What reading a line gave.
pub(crate) enum Line {
    /// A line of text (without its end of line).
    Text(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D or the end of the input.
    End,
}

/// Where the prompt's lines come from: a line editor on a terminal, a list in tests.
pub(crate) trait Lines {
    /// The next line, read after showing `prompt`.
    fn read_line(&mut self, prompt: &str) -> CliResult<Line>;
}

/// The terminal, through rustyline (line editing, history of this session).
struct Editor(DefaultEditor);

impl Lines for Editor {
    fn read_line(&mut self, prompt: &str) -> CliResult<Line> {
        match self.0.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    // History is a convenience: a line it cannot keep is still run.
                    let _ = self.0.add_history_entry(line.as_str());
                }
                Ok(Line::Text(line))
            }
            Err(ReadlineError::Interrupted) => Ok(Line::Interrupted),
            Err(ReadlineError::Eof) => Ok(Line::End),
            Err(e) => Err(e).context("reading the terminal"),
        }
    }
}

/// Runs the prompt on the terminal until the user leaves.
///
/// # Errors
/// The terminal cannot be read; a statement's error is printed, not returned.
pub async fn run(ctx: &SessionContext, format: OutputFormat) -> CliResult<()> {
    let editor = DefaultEditor::new().context("the terminal")?;
    eprintln!(
        "zerobus sql {}: end statements with ';', \\q to quit",
        env!("CARGO_PKG_VERSION")
    );
    repl(
        ctx,
        format,
        &mut Editor(editor),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await
}

/// The prompt's loop over `lines`: results to `out`, errors and hints to `messages`.
pub(crate) async fn repl(
    ctx: &SessionContext,
    format: OutputFormat,
    lines: &mut impl Lines,
    out: &mut dyn Write,
    messages: &mut dyn Write,
) -> CliResult<()> {
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        match lines.read_line(prompt)? {
            Line::End => return Ok(()),
            Line::Interrupted if buffer.is_empty() => {
                writeln!(messages, "(\\q or Ctrl-D to quit)").context("stderr")?;
            }
            Line::Interrupted => buffer.clear(),
            Line::Text(line) => {
                if buffer.is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
                    return Ok(());
                }
                buffer.push_str(&line);
                buffer.push('\n');
                if buffer.trim_end().ends_with(';') {
                    run_buffer(ctx, &buffer, format, out, messages).await?;
                    buffer.clear();
                }
            }
        }
    }
}

/// Runs the statements of `text` in order; the first that fails is reported to
/// `messages` and the rest are skipped.
async fn run_buffer(
    ctx: &SessionContext,
    text: &str,
    format: OutputFormat,
    out: &mut dyn Write,
    messages: &mut dyn Write,
) -> CliResult<()> {
    let result = match DFParser::parse_sql(text) {
        Ok(statements) => {
            let mut result = Ok(());
            for statement in statements {
                result = run_statement(ctx, statement, format, out).await;
                if result.is_err() {
                    break;
                }
            }
            result
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        writeln!(messages, "error: {e}").context("stderr")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Lines given up front, and the prompts shown.
    struct Scripted {
        lines: VecDeque<Line>,
        prompts: Vec<String>,
    }

    impl Scripted {
        fn new(lines: impl IntoIterator<Item = Line>) -> Self {
            Self {
                lines: lines.into_iter().collect(),
                prompts: Vec::new(),
            }
        }
    }

    impl Lines for Scripted {
        fn read_line(&mut self, prompt: &str) -> CliResult<Line> {
            self.prompts.push(prompt.to_string());
            Ok(self.lines.pop_front().unwrap_or(Line::End))
        }
    }

    fn text(line: &str) -> Line {
        Line::Text(line.to_string())
    }

    /// Runs `lines` through the prompt: (stdout, stderr, prompts shown, lines left).
    async fn session(lines: Vec<Line>) -> (String, String, Vec<String>, usize) {
        let ctx = SessionContext::new();
        let mut scripted = Scripted::new(lines);
        let (mut out, mut messages) = (Vec::new(), Vec::new());
        repl(
            &ctx,
            OutputFormat::Csv,
            &mut scripted,
            &mut out,
            &mut messages,
        )
        .await
        .expect("prompt");
        (
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(messages).expect("utf-8"),
            scripted.prompts,
            scripted.lines.len(),
        )
    }

    #[tokio::test]
    async fn a_statement_over_several_lines_runs_at_its_semicolon() {
        let (out, messages, prompts, _) =
            session(vec![text("SELECT 1 AS a,"), text("  2 AS b;")]).await;
        assert_eq!(out, "a,b\n1,2\n");
        assert_eq!(messages, "");
        assert_eq!(prompts, [PROMPT, CONTINUATION, PROMPT]);
    }

    #[tokio::test]
    async fn an_error_is_printed_and_the_prompt_goes_on() {
        let (out, messages, _, _) = session(vec![
            text("SELECT no_such_column;"),
            text("SELECT 3 AS c; SELECT 4 AS d;"),
        ])
        .await;
        assert_eq!(out, "c\n3\nd\n4\n");
        assert!(messages.starts_with("error: "), "{messages}");
        assert!(messages.contains("no_such_column"), "{messages}");
    }

    #[tokio::test]
    async fn tables_created_at_the_prompt_stay_for_the_next_statements() {
        let (out, messages, _, _) = session(vec![
            text("CREATE TABLE t AS VALUES (1), (2), (3);"),
            text("SELECT sum(column1) AS total FROM t;"),
        ])
        .await;
        assert_eq!(out, "total\n6\n");
        assert_eq!(messages, "");
    }

    #[tokio::test]
    async fn ctrl_c_drops_the_statement_being_typed() {
        let (out, messages, prompts, _) = session(vec![
            text("SELECT 5 AS e"),
            Line::Interrupted,
            text("SELECT 6 AS f;"),
            Line::Interrupted,
        ])
        .await;
        assert_eq!(out, "f\n6\n");
        assert_eq!(messages, "(\\q or Ctrl-D to quit)\n");
        assert_eq!(prompts, [PROMPT, CONTINUATION, PROMPT, PROMPT, PROMPT]);
    }

    #[tokio::test]
    async fn backslash_q_leaves_but_not_inside_a_statement() {
        let (out, _, _, left) = session(vec![
            text("SELECT"),
            text("quit"),
            text("AS x;"),
            text("\\q"),
            text("SELECT 7 AS y;"),
        ])
        .await;
        // `quit` inside the statement is a column alias's expression, not a command.
        assert!(out.is_empty(), "{out}");
        assert_eq!(left, 1, "the line after \\q is not read");
    }
}
