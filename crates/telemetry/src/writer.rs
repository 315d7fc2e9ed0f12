//! Log lines leave the request's thread through a bounded channel and one writer thread
//! writes them to stdout (issue 16: every request wrote its JSON line synchronously, the
//! write system call and stdout's lock on the request's path; docs: README, "Performance").
//!
//! Nothing is dropped: when the channel is full (stdout stuck behind 16,384 lines) the
//! caller waits, as it did before. [`flush`] (called when the telemetry guard drops, at exit)
//! waits until every line sent before it is written.

use std::{
    io::{self, Write},
    sync::{
        OnceLock,
        mpsc::{self, Receiver, SyncSender},
    },
    time::Duration,
};

use tracing_subscriber::fmt::MakeWriter;

const CAPACITY: usize = 16_384;
/// How long the writer lets lines gather after the first one (the most a line waits).
const BATCH_WAIT: Duration = Duration::from_millis(5);

enum Message {
    Line(Vec<u8>),
    Flush(mpsc::Sender<()>),
}

/// The `MakeWriter` handed to the fmt layer: one [`LineWriter`] per event.
#[derive(Clone)]
pub struct NonBlocking {
    sender: SyncSender<Message>,
}

static WRITER: OnceLock<NonBlocking> = OnceLock::new();

/// The process's writer, its thread started on first use. `None` if the thread could not
/// start (the caller then writes to stdout directly).
pub fn non_blocking() -> Option<NonBlocking> {
    if let Some(w) = WRITER.get() {
        return Some(w.clone());
    }
    let (sender, receiver) = mpsc::sync_channel(CAPACITY);
    std::thread::Builder::new()
        .name("log-writer".to_owned())
        .spawn(move || write_loop(&receiver))
        .ok()?;
    Some(WRITER.get_or_init(|| NonBlocking { sender }).clone())
}

/// Waits (at most 2 s) until every line logged before this call is written out.
pub fn flush() {
    if let Some(w) = WRITER.get() {
        let (ack, done) = mpsc::channel();
        if w.sender.send(Message::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(2));
        }
    }
}

fn write_loop(receiver: &Receiver<Message>) {
    // stdout is locked per batch, never for the thread's life: a `println!` elsewhere in the
    // process (e.g. `migrate` reporting what it applied) must not wait for ever.
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let write_out = |buf: &mut Vec<u8>| {
        if !buf.is_empty() {
            let mut out = io::stdout().lock();
            let _ = out.write_all(buf);
            let _ = out.flush();
            buf.clear();
        }
    };
    while let Ok(first) = receiver.recv() {
        // Let a few milliseconds of lines gather before writing: under load one wake-up and
        // one write per batch instead of per request line (the thread sleeping here is not
        // waiting on the channel, so a sender does not have to wake it either).
        std::thread::sleep(BATCH_WAIT);
        let mut next = Some(first);
        // Everything already queued goes out in one write, once the queue is empty.
        while let Some(message) = next {
            match message {
                Message::Line(line) => buf.extend_from_slice(&line),
                Message::Flush(ack) => {
                    write_out(&mut buf);
                    let _ = ack.send(());
                }
            }
            if buf.len() >= 64 * 1024 {
                write_out(&mut buf);
            }
            next = receiver.try_recv().ok();
        }
        write_out(&mut buf);
    }
}

/// Collects one formatted event; sends it as a whole when the fmt layer drops it.
pub struct LineWriter {
    line: Vec<u8>,
    sender: SyncSender<Message>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.line);
        if let Err(mpsc::SendError(Message::Line(line))) = self.sender.send(Message::Line(line)) {
            // The writer thread is gone (process exiting): write it here.
            let _ = io::stdout().lock().write_all(&line);
        }
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            line: Vec::with_capacity(512),
            sender: self.sender.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_whole_and_in_order() {
        let (sender, receiver) = mpsc::sync_channel(4);
        let w = NonBlocking { sender };
        for i in 0..3 {
            let mut line = w.make_writer();
            write!(line, "line ").unwrap();
            writeln!(line, "{i}").unwrap();
        }
        let got: Vec<String> = (0..3)
            .map(|_| match receiver.recv().unwrap() {
                Message::Line(l) => String::from_utf8(l).unwrap(),
                Message::Flush(_) => panic!("no flush sent"),
            })
            .collect();
        assert_eq!(got, ["line 0\n", "line 1\n", "line 2\n"]);
    }
}
