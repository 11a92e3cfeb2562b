//! kubepkg vs the reference clients, measured in one run against the local
//! environment (`cargo xtask env up`):
//!
//! - `big`: a 1 GiB file uploaded to MinIO and downloaded back to a file,
//!   kubepkg (multipart, streamed; `download`: 4 ranged GETs in parallel)
//!   vs `mc cp` (built by `benches/peers/mc/build.sh`; one GET stream),
//!   both downloading the same object, every transfer after a `sync` so
//!   none pays for the writeback of the one before;
//! - `small`: 10,000 × 4 KiB objects put with bounded concurrency, kubepkg vs
//!   `mc mirror` (which sizes its own worker pool);
//! - `mq`: 100,000 persistent messages published with confirms over the same
//!   number of confirm channels on one connection (`KUBEPKG_BENCH_CHANNELS`,
//!   default 4: kubepkg's `publish_channels`, PerfTest's `-X`, one producer
//!   per channel) with the same confirm window in total (split evenly over
//!   the channels), then consumed by one consumer with the same prefetch,
//!   kubepkg vs RabbitMQ PerfTest (`benches/peers/perftest/run.sh`).
//!
//! Every part runs `KUBEPKG_BENCH_ROUNDS` rounds (default 3), kubepkg and
//! the peer taking turns going first, and prints `RESULT <id>/kubepkg
//! <value> /s` and `RESULT <id>/<peer> <value> /s` per round, then
//! `kubepkg: X/s  peer: Y/s  ratio: Z` with the medians. Sizes:
//! `KUBEPKG_BENCH_BIG_MIB` (1024), `KUBEPKG_BENCH_SMALL_COUNT` (10000),
//! `KUBEPKG_BENCH_CONCURRENCY` (32), `KUBEPKG_BENCH_MESSAGES` (100000),
//! `KUBEPKG_BENCH_MSG_SIZE` (1024), `KUBEPKG_BENCH_CONFIRM` (128);
//! `KUBEPKG_BENCH_ONLY=big,small,mq` picks parts.
//!
//! ```text
//! cargo bench -p kubepkg-storage-api --all-features --bench peers
//! KUBEPKG_BENCH_BIG_MIB=64 KUBEPKG_BENCH_SMALL_COUNT=500 KUBEPKG_BENCH_MESSAGES=5000 cargo bench ... # quick
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kubepkg_storage_api::config::{AmqpConfig, MinioConfig};
use kubepkg_storage_api::mq::amqp::AmqpQueue;
use kubepkg_storage_api::mq::{ConsumeOptions, Message, MessageQueue, QueueSpec};
use kubepkg_storage_api::object::minio::MinioStorage;
use kubepkg_storage_api::object::{ByteStream, DownloadOptions, ObjectStorage, PutOptions};
use kubepkg_storage_api::{Bytes, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The rounds and the side that goes first in each.
struct Rounds {
    n: usize,
    shift: usize,
}

impl Rounds {
    fn from_env() -> Self {
        Rounds {
            n: env_usize("KUBEPKG_BENCH_ROUNDS", 3).max(1),
            // The runner's run number, so repeated runs do not always start
            // with the same side.
            shift: env_usize("KUBEPKG_BENCH_ROUND", 0),
        }
    }

    fn ours_first(&self, round: usize) -> bool {
        (round + self.shift).is_multiple_of(2)
    }
}

/// One round's rates.
fn sample(id: &str, peer: &str, ours: f64, theirs: f64) {
    println!("RESULT {id}/kubepkg {ours:.1} /s");
    println!("RESULT {id}/{peer} {theirs:.1} /s");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn report(what: &str, ours: Vec<f64>, peer: Vec<f64>, unit: &str) {
    let n = ours.len();
    let (ours, peer) = (median(ours), median(peer));
    println!(
        "{what}: kubepkg: {ours:.1} {unit}/s  peer: {peer:.1} {unit}/s  ratio: {:.2} (median of {n})",
        ours / peer
    );
}

fn mc_bin() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("benches/peers/mc/build.sh"))
        .output()
        .expect("running benches/peers/mc/build.sh");
    assert!(
        out.status.success(),
        "building mc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

struct Mc {
    bin: PathBuf,
    config_dir: tempfile::TempDir,
    host: String,
}

impl Mc {
    fn new() -> Self {
        let m = kubepkg_testenv::minio();
        let url = url::Url::parse(&m.endpoint).expect("minio endpoint");
        let host = format!(
            "{}://{}:{}@{}",
            url.scheme(),
            m.access_key,
            m.secret_key,
            url.host_str()
                .zip(url.port())
                .map(|(h, p)| format!("{h}:{p}"))
                .unwrap_or_default()
        );
        Mc {
            bin: mc_bin(),
            config_dir: tempfile::tempdir().expect("tempdir"),
            host,
        }
    }

    /// Runs mc and returns the wall time.
    fn run(&self, args: &[&str]) -> Duration {
        let started = Instant::now();
        let out = Command::new(&self.bin)
            .args(["--quiet", "--config-dir"])
            .arg(self.config_dir.path())
            .args(args)
            .env("MC_HOST_bench", &self.host)
            .output()
            .expect("running mc");
        let took = started.elapsed();
        assert!(
            out.status.success(),
            "mc {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        took
    }
}

fn minio() -> MinioStorage {
    let m = kubepkg_testenv::minio();
    MinioStorage::new(&MinioConfig {
        endpoint: m.endpoint.clone(),
        access_key: m.access_key.clone(),
        secret_key: m.secret_key.clone().into(),
        region: m.region.clone(),
        ..Default::default()
    })
    .expect("minio client")
}

fn write_random_file(path: &Path, len: usize) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1024 * 1024];
    let mut left = len;
    while left > 0 {
        for c in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).expect("write");
        left -= n;
    }
    f.flush().expect("flush");
}

fn file_stream(path: PathBuf) -> ByteStream {
    futures::stream::try_unfold(None::<tokio::fs::File>, move |f| {
        let path = path.clone();
        async move {
            let mut f = match f {
                Some(f) => f,
                None => tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Error::io("open", e))?,
            };
            let mut buf = vec![0u8; 1024 * 1024];
            let mut filled = 0;
            while filled < buf.len() {
                let n = f
                    .read(&mut buf[filled..])
                    .await
                    .map_err(|e| Error::io("read", e))?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                return Ok(None);
            }
            buf.truncate(filled);
            Ok(Some((Bytes::from(buf), Some(f))))
        }
    })
    .boxed()
}

async fn bench_big(store: &MinioStorage, mc: &Mc, bucket: &str, dir: &Path, rounds: &Rounds) {
    let mib = env_usize("KUBEPKG_BENCH_BIG_MIB", 1024);
    let len = mib * 1024 * 1024;
    let src = dir.join("big.bin");
    write_random_file(&src, len);
    let mb = len as f64 / 1e6;
    let out = dir.join("big.down");

    let ours_up = || async {
        let started = Instant::now();
        let r = store
            .put_stream(
                bucket,
                "big-kubepkg",
                file_stream(src.clone()),
                &PutOptions::default(),
            )
            .await
            .expect("upload");
        assert_eq!(r.size as usize, len);
        mb / started.elapsed().as_secs_f64()
    };
    let mc_up = || {
        mb / mc
            .run(&[
                "cp",
                src.to_str().unwrap_or_default(),
                &format!("bench/{bucket}/big-mc"),
            ])
            .as_secs_f64()
    };
    // Both sides read the same object (kubepkg's upload) into a file in
    // the same directory, each through a temporary file renamed at the
    // end. kubepkg: `download` with its defaults (above 64 MiB, 16 MiB
    // ranged GETs, 4 in flight, written from a blocking thread; the size
    // checked, the ETag being multipart); mc cp: one GET stream.
    let ours_down = || async {
        let started = Instant::now();
        let r = store
            .download(bucket, "big-kubepkg", &out, &DownloadOptions::default())
            .await
            .expect("download");
        let rate = mb / started.elapsed().as_secs_f64();
        assert_eq!(r.size as usize, len);
        assert_eq!(
            std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) as usize,
            len
        );
        std::fs::remove_file(&out).ok();
        rate
    };
    let mc_down = || {
        let rate = mb
            / mc.run(&[
                "cp",
                &format!("bench/{bucket}/big-kubepkg"),
                out.to_str().unwrap_or_default(),
            ])
            .as_secs_f64();
        assert_eq!(
            std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) as usize,
            len
        );
        std::fs::remove_file(&out).ok();
        rate
    };

    // Each transfer starts with nothing left to write back: the gigabyte
    // the one before it wrote (MinIO's copy, or the downloaded file) is
    // flushed first, untimed, so neither side pays for the other's writes.
    let settle = || {
        let ok = Command::new("sync").status().is_ok_and(|s| s.success());
        assert!(ok, "sync failed");
    };
    let (mut up, mut up_mc, mut down, mut down_mc) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds.n {
        let (o, p) = if rounds.ours_first(round) {
            settle();
            let o = ours_up().await;
            settle();
            (o, mc_up())
        } else {
            settle();
            let p = mc_up();
            settle();
            (ours_up().await, p)
        };
        sample("storage/upload_big", "mc", o, p);
        up.push(o);
        up_mc.push(p);
        let (o, p) = if rounds.ours_first(round) {
            settle();
            let o = ours_down().await;
            settle();
            (o, mc_down())
        } else {
            settle();
            let p = mc_down();
            settle();
            (ours_down().await, p)
        };
        sample("storage/download_big", "mc", o, p);
        down.push(o);
        down_mc.push(p);
        eprintln!(
            "big round {round}: up {:.0} vs {:.0} MB/s, down {:.0} vs {:.0} MB/s",
            up[round], up_mc[round], down[round], down_mc[round]
        );
    }
    report(&format!("upload {mib} MiB"), up, up_mc, "MB");
    report(&format!("download {mib} MiB"), down, down_mc, "MB");
    std::fs::remove_file(&src).ok();
    store
        .delete_objects(bucket, &["big-kubepkg".to_owned(), "big-mc".to_owned()])
        .await
        .expect("cleanup");
}

async fn delete_prefix(store: &MinioStorage, bucket: &str, prefix: &str) {
    let keys: Vec<String> = store
        .list_objects(
            bucket,
            &kubepkg_storage_api::object::ListOptions::prefix(prefix),
        )
        .map_ok(|p| futures::stream::iter(p.objects.into_iter().map(|o| Ok::<_, Error>(o.key))))
        .try_flatten()
        .try_collect()
        .await
        .expect("list");
    store.delete_objects(bucket, &keys).await.expect("delete");
}

async fn bench_small(store: &MinioStorage, mc: &Mc, bucket: &str, dir: &Path, rounds: &Rounds) {
    let count = env_usize("KUBEPKG_BENCH_SMALL_COUNT", 10_000);
    let conc = env_usize("KUBEPKG_BENCH_CONCURRENCY", 32);
    let src = dir.join("small");
    std::fs::create_dir_all(&src).expect("mkdir");
    for i in 0..count {
        let mut data = vec![0u8; 4096];
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(src.join(format!("obj-{i:06}")), data).expect("write");
    }
    let ours = |round: usize| {
        let src = &src;
        async move {
            let started = Instant::now();
            futures::stream::iter(0..count)
                .map(|i| {
                    let path = src.join(format!("obj-{i:06}"));
                    async move {
                        let data = tokio::fs::read(&path)
                            .await
                            .map_err(|e| Error::io("read", e))?;
                        store
                            .put_object(
                                bucket,
                                &format!("small-kubepkg-{round}/obj-{i:06}"),
                                data.into(),
                                &PutOptions::default(),
                            )
                            .await
                    }
                })
                .buffer_unordered(conc)
                .try_for_each(|_| async { Ok(()) })
                .await
                .expect("small puts");
            count as f64 / started.elapsed().as_secs_f64()
        }
    };
    // mc mirror picks its own number of parallel workers; a fresh prefix
    // each round, so it has everything to copy.
    let peer = |round: usize| {
        count as f64
            / mc.run(&[
                "mirror",
                src.to_str().unwrap_or_default(),
                &format!("bench/{bucket}/small-mc-{round}"),
            ])
            .as_secs_f64()
    };
    let (mut o_all, mut p_all) = (vec![], vec![]);
    for round in 0..rounds.n {
        let (o, p) = if rounds.ours_first(round) {
            let o = ours(round).await;
            (o, peer(round))
        } else {
            let p = peer(round);
            (ours(round).await, p)
        };
        sample("storage/small_puts", "mc", o, p);
        o_all.push(o);
        p_all.push(p);
        for prefix in [
            format!("small-kubepkg-{round}/"),
            format!("small-mc-{round}/"),
        ] {
            delete_prefix(store, bucket, &prefix).await;
        }
    }
    report(
        &format!("{count} x 4 KiB puts, {conc} in flight"),
        o_all,
        p_all,
        "objects",
    );
    std::fs::remove_dir_all(&src).ok();
}

/// `probe` (not run by default): where the download time goes. The same
/// object read back several ways, each printed as MB/s beside `mc cp`:
/// the body drained without writing (the client alone, with the sizes of
/// the chunks it yields), drained into a `tokio::fs::File` one chunk at a
/// time (what `big` does), gathered into 1 MiB blocks written by a blocking
/// thread, as `KUBEPKG_BENCH_PROBE_PARTS` (default 4) ranged GETs in
/// parallel written in place, and through `download` with 1, 2, 4 and 8
/// ranged GETs in flight.
async fn probe_download(store: &MinioStorage, mc: &Mc, bucket: &str, dir: &Path) {
    use kubepkg_storage_api::object::ByteRange;
    let mib = env_usize("KUBEPKG_BENCH_BIG_MIB", 1024);
    let parts = env_usize("KUBEPKG_BENCH_PROBE_PARTS", 4).max(1);
    let len = mib * 1024 * 1024;
    let mb = len as f64 / 1e6;
    let src = dir.join("probe.bin");
    write_random_file(&src, len);
    store
        .put_stream(
            bucket,
            "probe",
            file_stream(src.clone()),
            &PutOptions::default(),
        )
        .await
        .expect("upload");
    std::fs::remove_file(&src).ok();
    let out = dir.join("probe.down");

    // 1. drain only
    let started = Instant::now();
    let mut body = store
        .get_stream(bucket, "probe", None)
        .await
        .expect("get")
        .body;
    let (mut n, mut chunks, mut largest) = (0usize, 0usize, 0usize);
    while let Some(c) = body.next().await {
        let c = c.expect("chunk");
        n += c.len();
        chunks += 1;
        largest = largest.max(c.len());
    }
    assert_eq!(n, len);
    let drain = mb / started.elapsed().as_secs_f64();
    println!(
        "probe: drain only {drain:.0} MB/s ({chunks} chunks, mean {} B, largest {largest} B)",
        n / chunks.max(1)
    );

    // 2. tokio::fs, one write per chunk
    let started = Instant::now();
    let mut body = store
        .get_stream(bucket, "probe", None)
        .await
        .expect("get")
        .body;
    let mut f = tokio::fs::File::create(&out).await.expect("create");
    while let Some(c) = body.next().await {
        f.write_all(&c.expect("chunk")).await.expect("write");
    }
    f.flush().await.expect("flush");
    drop(f);
    println!(
        "probe: tokio::fs::File per chunk {:.0} MB/s",
        mb / started.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&out).ok();

    // 3. 1 MiB blocks written by a blocking thread
    let started = Instant::now();
    let mut body = store
        .get_stream(bucket, "probe", None)
        .await
        .expect("get")
        .body;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let path = out.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::File::create(&path).expect("create");
        for block in rx {
            f.write_all(&block).expect("write");
        }
    });
    let mut block = Vec::with_capacity(1 << 20);
    while let Some(c) = body.next().await {
        block.extend_from_slice(&c.expect("chunk"));
        if block.len() >= 1 << 20 {
            tx.send(std::mem::replace(&mut block, Vec::with_capacity(1 << 20)))
                .expect("writer");
        }
    }
    tx.send(block).expect("writer");
    drop(tx);
    writer.join().expect("writer thread");
    println!(
        "probe: 1 MiB blocks on a blocking thread {:.0} MB/s",
        mb / started.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&out).ok();

    // 4. parallel ranged GETs, written in place
    let started = Instant::now();
    let file = Arc::new(std::fs::File::create(&out).expect("create"));
    file.set_len(len as u64).expect("size");
    let part = len.div_ceil(parts);
    futures::stream::iter(0..parts)
        .map(|i| {
            let file = file.clone();
            async move {
                use std::os::unix::fs::FileExt;
                let (start, end) = (i * part, ((i + 1) * part).min(len));
                let mut body = store
                    .get_stream(
                        bucket,
                        "probe",
                        Some(ByteRange::new(start as u64, end as u64)),
                    )
                    .await
                    .expect("ranged get")
                    .body;
                let mut at = start as u64;
                let mut block = Vec::with_capacity(1 << 20);
                while let Some(c) = body.next().await {
                    block.extend_from_slice(&c.expect("chunk"));
                    if block.len() >= 1 << 20 {
                        let b = std::mem::replace(&mut block, Vec::with_capacity(1 << 20));
                        let f = file.clone();
                        let pos = at;
                        at += b.len() as u64;
                        tokio::task::spawn_blocking(move || f.write_all_at(&b, pos))
                            .await
                            .expect("join")
                            .expect("write");
                    }
                }
                file.write_all_at(&block, at).expect("write");
                assert_eq!(at as usize + block.len(), end);
            }
        })
        .buffer_unordered(parts)
        .collect::<Vec<()>>()
        .await;
    drop(file);
    println!(
        "probe: {parts} ranged GETs in parallel {:.0} MB/s",
        mb / started.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&out).ok();

    // 5. `download` itself, with 1, 2, 4 and 8 ranged GETs in flight, and
    // the CPU time this process spent on it
    for parts in [1, 2, 4, 8] {
        let opts = DownloadOptions {
            max_concurrent_parts: parts,
            ..Default::default()
        };
        let (cpu, started) = (cpu_secs().0, Instant::now());
        store
            .download(bucket, "probe", &out, &opts)
            .await
            .expect("download");
        println!(
            "probe: download, {parts} ranged GETs in flight {:.0} MB/s, {:.2} s CPU",
            mb / started.elapsed().as_secs_f64(),
            cpu_secs().0 - cpu
        );
        std::fs::remove_file(&out).ok();
    }

    // the peer, same object
    mc.run(&[
        "cp",
        &format!("bench/{bucket}/probe"),
        out.to_str().unwrap_or_default(),
    ]);
    std::fs::remove_file(&out).ok();
    let children = cpu_secs().1;
    let peer = mb
        / mc.run(&[
            "cp",
            &format!("bench/{bucket}/probe"),
            out.to_str().unwrap_or_default(),
        ])
        .as_secs_f64();
    println!(
        "probe: mc cp {peer:.0} MB/s, {:.2} s CPU",
        cpu_secs().1 - children
    );
    std::fs::remove_file(&out).ok();
    store
        .delete_objects(bucket, &["probe".to_owned()])
        .await
        .expect("cleanup");
}

/// CPU seconds (user + system) of this process and of its waited-for
/// children, from `/proc/self/stat` (NaN where it cannot be read).
fn cpu_secs() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the
    // 14th field of the line, cutime the 16th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect();
    let get = |i: usize| f.get(i - 3).copied().unwrap_or(f64::NAN);
    let tick = 100.0;
    ((get(14) + get(15)) / tick, (get(16) + get(17)) / tick)
}

/// kubepkg's side of one mq round: publish `n`, then consume them.
async fn mq_ours(mq: &Arc<AmqpQueue>, n: usize, size: usize, window: usize) -> (f64, f64) {
    let queue = kubepkg_testenv::unique_name("bench");
    mq.declare_queue(&QueueSpec::new(&queue))
        .await
        .expect("declare");
    let body = Bytes::from(vec![b'm'; size]);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|_| {
            let mq = mq.clone();
            let msg = Message::new(body.clone());
            let queue = queue.clone();
            async move { mq.publish("", &queue, &msg).await }
        })
        .buffer_unordered(window)
        .try_for_each(|_| async { Ok(()) })
        .await
        .expect("publish");
    let publish = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut c = mq
        .consume(&queue, &ConsumeOptions::prefetch(window as u16))
        .await
        .expect("consume");
    for _ in 0..n {
        let d = c.next().await.expect("delivery").expect("delivery");
        d.ack().await.expect("ack");
    }
    let consume = n as f64 / started.elapsed().as_secs_f64();
    drop(c);
    mq.delete_queue(&queue).await.expect("delete");
    (publish, consume)
}

/// PerfTest's side: the same counts over the same number of channels.
async fn mq_perftest(
    mq: &Arc<AmqpQueue>,
    n: usize,
    size: usize,
    window: usize,
    channels: usize,
) -> (f64, f64) {
    let r = kubepkg_testenv::rabbitmq();
    let peer_queue = kubepkg_testenv::unique_name("perftest");
    let out = tokio::process::Command::new("bash")
        .arg(root().join("benches/peers/perftest/run.sh"))
        .args([
            &r.url,
            &n.to_string(),
            &size.to_string(),
            &window.to_string(),
            &window.to_string(),
            &peer_queue,
            &channels.to_string(),
        ])
        .output()
        .await
        .expect("running perftest");
    mq.delete_queue(&peer_queue)
        .await
        .expect("delete the perftest queue");
    assert!(
        out.status.success(),
        "perftest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |id: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("RESULT {id} ")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN)
    };
    (get("perftest/publish"), get("perftest/consume"))
}

async fn bench_mq(rounds: &Rounds) {
    let r = kubepkg_testenv::rabbitmq();
    let n = env_usize("KUBEPKG_BENCH_MESSAGES", 100_000);
    let size = env_usize("KUBEPKG_BENCH_MSG_SIZE", 1024);
    let window = env_usize("KUBEPKG_BENCH_CONFIRM", 128);
    let channels = env_usize("KUBEPKG_BENCH_CHANNELS", 4).max(1);
    // Whole messages and whole windows per channel on both sides.
    let n = n / channels * channels;
    let window = (window / channels).max(1) * channels;
    let mq = Arc::new(
        AmqpQueue::new(&AmqpConfig {
            publish_channels: channels,
            ..AmqpConfig::new(r.url.clone())
        })
        .expect("amqp"),
    );
    let (mut pubs, mut cons, mut ppubs, mut pcons) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds.n {
        let ((op, oc), (pp, pc)) = if rounds.ours_first(round) {
            let o = mq_ours(&mq, n, size, window).await;
            (o, mq_perftest(&mq, n, size, window, channels).await)
        } else {
            let p = mq_perftest(&mq, n, size, window, channels).await;
            (mq_ours(&mq, n, size, window).await, p)
        };
        sample("mq/publish", "perftest", op, pp);
        sample("mq/consume", "perftest", oc, pc);
        pubs.push(op);
        cons.push(oc);
        ppubs.push(pp);
        pcons.push(pc);
    }
    report(
        &format!(
            "publish {n} x {size} B persistent, {channels} confirm channels, {window} unconfirmed in total"
        ),
        pubs,
        ppubs,
        "msg",
    );
    report(
        &format!("consume {n} x {size} B, one consumer, prefetch {window}"),
        cons,
        pcons,
        "msg",
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` passes
    // nothing useful: only run when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let only = std::env::var("KUBEPKG_BENCH_ONLY").unwrap_or_else(|_| "big,small,mq".into());
    let rounds = Rounds::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        if only.contains("big") || only.contains("small") || only.contains("probe") {
            let store = minio();
            let mc = Mc::new();
            let bucket = kubepkg_testenv::unique_name("bench");
            store.create_bucket(&bucket).await.expect("bucket");
            let dir = tempfile::tempdir().expect("tempdir");
            if only.contains("big") {
                bench_big(&store, &mc, &bucket, dir.path(), &rounds).await;
            }
            if only.contains("small") {
                bench_small(&store, &mc, &bucket, dir.path(), &rounds).await;
            }
            if only.contains("probe") {
                probe_download(&store, &mc, &bucket, dir.path()).await;
            }
            store.delete_bucket(&bucket).await.expect("delete bucket");
        }
        if only.contains("mq") {
            bench_mq(&rounds).await;
        }
    });
}
