//! A loopback endpoint in the AWS container-credentials format, for `esc-hook exec --server`:
//! a command that outlives its credentials (a long `terraform apply`) asks here instead of
//! holding static keys, and every AWS SDK (and so Terraform's provider and the AWS CLI) asks
//! again when what it has nears its `Expiration`.
//!
//! The command finds it through `AWS_CONTAINER_CREDENTIALS_FULL_URI` (plain http is accepted
//! by the SDKs for loopback only) and proves itself with `AWS_CONTAINER_AUTHORIZATION_TOKEN`,
//! 32 random bytes checked on every request: another local user can reach the port but not
//! read the command's environment. The answer is `{"AccessKeyId", "SecretAccessKey", "Token",
//! "Expiration"}`. Each connection has a reader of its own (16 at most at once), which must have
//! the whole request within 2 seconds: a client that trickles its request holds up nobody
//! else, and the endpoint stops when the command ends, whoever is still connected.
//!
//! The port is not given up while anything still holds its token: processes the command left
//! behind keep the URI, and another user who took a freed port would be handed the token and
//! could answer with credentials of their own. A detached keeper takes the listening socket
//! over and refuses every request until no process holds the token (see
//! [`Endpoint::keep_while_held`]). (A Unix socket would need no keeper, but the SDKs take only
//! an http(s) URI.)

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::ground::time;
use crate::provider::sts::Session;

/// What a request is answered with: a session and when it expires.
pub struct Credentials {
    pub session: Session,
    pub expires_at: SystemTime,
}

pub struct Endpoint {
    listener: TcpListener,
    address: SocketAddr,
    token: String,
    stop: Arc<AtomicBool>,
}

/// How long one client may take to send its whole request (and to take the answer).
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Connections being read at once; more are closed unread.
const MAX_CLIENTS: usize = 16;
/// A request larger than this is not a credentials request.
const MAX_REQUEST: usize = 16 * 1024;

/// The hidden command a keeper runs as.
pub const KEEPER_COMMAND: &str = "__keep-endpoint";
/// The descriptor a keeper finds the listening socket at.
const KEEPER_FD: libc::c_int = 3;
/// How often a keeper looks for processes still holding the token, and for how long at most.
const KEEPER_CHECK_EVERY: Duration = Duration::from_secs(2);
const KEEPER_AT_MOST: Duration = Duration::from_secs(24 * 3600);

impl Endpoint {
    /// Listens on a free loopback port, with a fresh token.
    pub fn bind() -> io::Result<Endpoint> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let address = listener.local_addr()?;
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Endpoint {
            listener,
            address,
            token,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The variables that point an SDK here.
    pub fn variables(&self) -> [(&'static str, String); 2] {
        [
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("http://{}/credentials", self.address),
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", self.token.clone()),
        ]
    }

    /// Once the command has ended: when processes it left behind still hold the token, a
    /// detached keeper (this binary again) takes the listening socket over, so the port is
    /// never free while someone may still ask it. Linux only (the holders are found in /proc).
    pub fn keep_while_held(&self) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        if !cfg!(target_os = "linux") || holders(&self.token) == 0 {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let listening = self.listener.as_raw_fd();
        let mut keeper = std::process::Command::new(exe);
        keeper
            .arg(KEEPER_COMMAND)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .current_dir("/");
        // SAFETY: dup2, fcntl and setsid are async-signal-safe. The socket goes to the
        // keeper's descriptor 3 (without close-on-exec); the keeper leaves this session, so
        // the terminal's signals do not reach it.
        unsafe {
            keeper.pre_exec(move || {
                let moved = match listening {
                    KEEPER_FD => libc::fcntl(KEEPER_FD, libc::F_SETFD, 0),
                    _ => libc::dup2(listening, KEEPER_FD),
                };
                if moved < 0 {
                    return Err(io::Error::last_os_error());
                }
                libc::setsid();
                Ok(())
            });
        }
        // The token goes through a pipe: never in an argument or the environment.
        if let Ok(mut child) = keeper.spawn()
            && let Some(mut stdin) = child.stdin.take()
        {
            let _ = stdin.write_all(self.token.as_bytes());
        }
    }

    /// A handle that makes [`Endpoint::serve`] return, from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            address: self.address,
            stop: Arc::clone(&self.stop),
        }
    }

    /// Answers requests until stopped, each from `credentials` (which refreshes as needed).
    /// Requests are read on threads of their own and answered here, one at a time.
    pub fn serve(&self, credentials: &mut dyn FnMut() -> Result<Credentials, String>) {
        let Ok(listener) = self.listener.try_clone() else {
            return;
        };
        // Bounded: a reader holds its place among MAX_CLIENTS until its request is queued, so
        // connections arriving faster than they are answered are closed, not piled up.
        let (requests, arrived) = mpsc::sync_channel::<(TcpStream, Option<String>)>(MAX_CLIENTS);
        let stop = Arc::clone(&self.stop);
        let accepting = std::thread::Builder::new()
            .name("endpoint".into())
            .spawn(move || accept(&listener, &stop, &requests));
        if accepting.is_err() {
            return;
        }
        while !self.stop.load(Ordering::SeqCst) {
            match arrived.recv_timeout(Duration::from_millis(100)) {
                Ok((stream, head)) => {
                    let _ = self.answer(stream, head, credentials);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn answer(
        &self,
        mut stream: TcpStream,
        head: Option<String>,
        credentials: &mut dyn FnMut() -> Result<Credentials, String>,
    ) -> io::Result<()> {
        stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
        let Some(request) = head else {
            return respond(&mut stream, 400, &error_body("a malformed request"));
        };
        let mut lines = request.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        if first.next() != Some("GET") {
            return respond(&mut stream, 405, &error_body("only GET is served"));
        }
        let authorization = lines.find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("authorization")
                .then(|| value.trim())
        });
        if !authorization.is_some_and(|given| same_secret(given, &self.token)) {
            return respond(
                &mut stream,
                401,
                &error_body("the authorization token is missing or wrong"),
            );
        }
        match credentials() {
            Ok(Credentials {
                session,
                expires_at,
            }) => {
                let body = json!({
                    "AccessKeyId": session.access_key_id,
                    "SecretAccessKey": session.secret_access_key,
                    "Token": session.session_token,
                    "Expiration": time::rfc3339(time::unix(expires_at)),
                });
                respond(&mut stream, 200, &body.to_string())
            }
            Err(reason) => respond(&mut stream, 503, &error_body(&reason)),
        }
    }
}

pub struct Stopper {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Stopper {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept call, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
    }
}

/// A keeper (see [`Endpoint::keep_while_held`]): refuses every request on the inherited
/// socket until no process holds the token, for a day at most. The exit code.
pub fn run_keeper() -> u8 {
    use std::os::fd::FromRawFd;
    let mut token = String::new();
    let read = io::stdin().take(128).read_to_string(&mut token);
    if read.is_err() || token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return 1;
    }
    // SAFETY: the socket was placed at this descriptor by the process that started us.
    let listener = unsafe { TcpListener::from_raw_fd(KEEPER_FD) };
    let Ok(address) = listener.local_addr() else {
        return 1;
    };
    let endpoint = Endpoint {
        listener,
        address,
        token,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let stopper = endpoint.stopper();
    let token = endpoint.token.clone();
    let started = Instant::now();
    let watching = std::thread::Builder::new()
        .name("keeper".into())
        .spawn(move || {
            loop {
                std::thread::sleep(KEEPER_CHECK_EVERY);
                if holders(&token) == 0 || started.elapsed() > KEEPER_AT_MOST {
                    stopper.stop();
                    return;
                }
            }
        });
    if watching.is_err() {
        return 1;
    }
    endpoint.serve(&mut || {
        Err("the `esc-hook exec` that served these credentials has ended".to_string())
    });
    0
}

/// How many processes (other than this one) were started with the endpoint's token in their
/// environment: those the keeper holds the port for. Processes of other users cannot be read,
/// and cannot hold the token either.
fn holders(token: &str) -> usize {
    let needle = format!("AWS_CONTAINER_AUTHORIZATION_TOKEN={token}\0");
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let mut environ = Vec::new();
            std::fs::File::open(format!("/proc/{pid}/environ"))
                .and_then(|file| file.take(4 * 1024 * 1024).read_to_end(&mut environ))
                .is_ok()
                && environ
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
        })
        .count()
}

/// Accepts connections until stopped, each read on a thread of its own (at most
/// [`MAX_CLIENTS`] at once), and hands every request, whole or not, to the serving loop.
fn accept(
    listener: &TcpListener,
    stop: &AtomicBool,
    requests: &mpsc::SyncSender<(TcpStream, Option<String>)>,
) {
    let reading = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut stream) = stream else {
            continue;
        };
        if reading.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            // Closed unread: a well-behaved SDK asks once at a time.
            reading.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let requests = requests.clone();
        let done = Arc::clone(&reading);
        let spawned = std::thread::Builder::new()
            .name("endpoint-client".into())
            .spawn(move || {
                let head = read_head(&mut stream, Instant::now() + REQUEST_DEADLINE)
                    .ok()
                    .flatten();
                // Blocks while the queue is full (and ends when serving has stopped).
                let _ = requests.send((stream, head));
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            reading.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The request line and headers, up to the blank line; `None` if they did not come whole
/// before `deadline` (however slowly the bytes trickle in).
fn read_head(stream: &mut TcpStream, deadline: Instant) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(None),
            Ok(n) => head.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8(head).ok())
}

fn error_body(message: &str) -> String {
    json!({"Code": "CredentialsUnavailable", "Message": message}).to_string()
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// Compares a presented token with ours in time independent of where they differ.
fn same_secret(given: &str, ours: &str) -> bool {
    given.len() == ours.len()
        && given
            .bytes()
            .zip(ours.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(address: &str, authorization: Option<&str>) -> String {
        let mut stream = TcpStream::connect(address).unwrap();
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        write!(stream, "GET /credentials HTTP/1.1\r\nHost: x\r\n{auth}\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn answers_only_with_the_token_and_only_on_loopback() {
        let endpoint = Endpoint::bind().unwrap();
        let [(_, uri), (_, token)] = endpoint.variables();
        assert!(uri.starts_with("http://127.0.0.1:"), "{uri}");
        let address = uri
            .trim_start_matches("http://")
            .trim_end_matches("/credentials")
            .to_string();
        let stopper = endpoint.stopper();
        let client = std::thread::spawn(move || {
            let refused = get(&address, None);
            let wrong = get(&address, Some("not-the-token"));
            let served = get(&address, Some(&token));
            stopper.stop();
            (refused, wrong, served)
        });
        let mut calls = 0;
        endpoint.serve(&mut || {
            calls += 1;
            Ok(Credentials {
                session: Session {
                    access_key_id: "AKIA-1".into(),
                    secret_access_key: "secret".into(),
                    session_token: Some("token".into()),
                    expires_at: None,
                },
                expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
            })
        });
        let (refused, wrong, served) = client.join().unwrap();
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
        assert!(!refused.contains("AKIA") && !wrong.contains("AKIA"));
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        let body: serde_json::Value =
            serde_json::from_str(served.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["AccessKeyId"], "AKIA-1");
        assert_eq!(body["Token"], "token");
        assert_eq!(body["Expiration"], "2033-05-18T03:33:20Z");
        assert_eq!(
            calls, 1,
            "credentials are asked for only when the token is right"
        );
    }

    /// A client that connects first and trickles its request a byte at a time used to hold the
    /// only reader: every other request waited, and `exec` could not end.
    #[test]
    fn a_trickling_client_holds_up_nobody_and_stopping_ends_the_serving() {
        let endpoint = Endpoint::bind().unwrap();
        let [(_, uri), (_, token)] = endpoint.variables();
        let address = uri
            .trim_start_matches("http://")
            .trim_end_matches("/credentials")
            .to_string();
        let stopper = endpoint.stopper();
        let trickle = Arc::new(AtomicBool::new(true));
        let trickling = Arc::clone(&trickle);
        let slow_address = address.clone();
        let slow = std::thread::spawn(move || {
            let mut stream = TcpStream::connect(&slow_address).unwrap();
            let started = Instant::now();
            // Errors are ignored: the endpoint may give up on it; it keeps going regardless.
            while trickling.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                let _ = stream.write_all(b"G");
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let (served_tx, served_rx) = mpsc::channel();
        let serving = std::thread::spawn(move || {
            endpoint.serve(&mut || {
                Ok(Credentials {
                    session: Session {
                        access_key_id: "AKIA-1".into(),
                        secret_access_key: "secret".into(),
                        session_token: None,
                        expires_at: None,
                    },
                    expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
                })
            });
            let _ = served_tx.send(());
        });
        std::thread::sleep(Duration::from_millis(300));
        let served = get(&address, Some(&token));
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        assert!(
            !slow.is_finished(),
            "answered while the slow client still trickles"
        );
        stopper.stop();
        // A bound, not a speed claim: serving ends with the slow client still connected.
        assert!(
            served_rx.recv_timeout(Duration::from_secs(30)).is_ok(),
            "the endpoint kept serving after it was stopped"
        );
        trickle.store(false, Ordering::SeqCst);
        serving.join().unwrap();
        slow.join().unwrap();
    }
}
