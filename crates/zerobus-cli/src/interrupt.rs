//! Ctrl-C during `zerobus ingest`.
//!
//! The first Ctrl-C (SIGINT) asks the ingest to stop reading new input: what was already
//! handed to the wrapper is waited for (acknowledged or failed), so the summary can say
//! exactly which rows landed, and the exit code is [`exit::INTERRUPTED`]. A second Ctrl-C
//! exits at once with the same code, without waiting (the rows in flight may or may not
//! land).

use tokio::sync::watch;

use crate::exit;

/// Whether Ctrl-C was pressed, once listening started.
pub struct Interrupt {
    pressed: watch::Receiver<bool>,
}

impl Interrupt {
    /// Listens for Ctrl-C from now on, for the rest of the process (must be called inside
    /// the runtime). Unless `quiet`, the first Ctrl-C is acknowledged on stderr at once.
    ///
    /// Where the signal cannot be listened to, Ctrl-C keeps its default action (the
    /// process ends) and [`Interrupt::pressed`] never completes.
    pub fn listen(quiet: bool) -> Self {
        let (sender, pressed) = watch::channel(false);
        if let Ok(mut ctrl_c) = CtrlC::new() {
            tokio::spawn(async move {
                if ctrl_c.recv().await.is_none() {
                    return;
                }
                sender.send_replace(true);
                if !quiet {
                    eprintln!(
                        "\nzerobus: interrupted: reading stops; waiting for the rows in flight \
                         to be acknowledged (Ctrl-C again to exit at once)"
                    );
                }
                if ctrl_c.recv().await.is_some() {
                    eprintln!(
                        "\nzerobus: interrupted again: exiting without waiting; rows in flight \
                         may or may not have landed"
                    );
                    std::process::exit(i32::from(exit::INTERRUPTED));
                }
                // The signal stream ended: keep `sender`, so the flag stays readable.
                std::future::pending::<()>().await;
            });
        }
        Self { pressed }
    }

    /// Whether Ctrl-C was pressed.
    pub fn is_pressed(&self) -> bool {
        *self.pressed.borrow()
    }

    /// Completes once Ctrl-C is pressed (at once if it was); never if it cannot be
    /// listened to.
    pub async fn pressed(&mut self) {
        if self.pressed.wait_for(|pressed| *pressed).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The Ctrl-C events of the process, buffered between two `recv`s.
#[cfg(unix)]
struct CtrlC(tokio::signal::unix::Signal);

#[cfg(unix)]
impl CtrlC {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::interrupt()).map(Self)
    }

    async fn recv(&mut self) -> Option<()> {
        self.0.recv().await
    }
}

#[cfg(windows)]
struct CtrlC(tokio::signal::windows::CtrlC);

#[cfg(windows)]
impl CtrlC {
    fn new() -> std::io::Result<Self> {
        tokio::signal::windows::ctrl_c().map(Self)
    }

    async fn recv(&mut self) -> Option<()> {
        self.0.recv().await
    }
}

/// No signals here: Ctrl-C keeps its default action.
#[cfg(not(any(unix, windows)))]
struct CtrlC;

#[cfg(not(any(unix, windows)))]
impl CtrlC {
    fn new() -> std::io::Result<Self> {
        Err(std::io::Error::other("no Ctrl-C handling on this platform"))
    }

    async fn recv(&mut self) -> Option<()> {
        None
    }
}
