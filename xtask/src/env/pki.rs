//! Certificates, made with openssl into `target/kubepkg-env/pki/` on the
//! first `up` and kept until `down`.
//!
//! Two CAs: the cluster's ([`CLUSTER_CA`]: the API server's and kwok's
//! serving certificates; the API server also trusts it for client
//! certificates and the controller manager signs with it) and one for
//! the other services ([`SERVICES_CA`]: the HTTPS endpoints of the OCI
//! registry and MinIO). Kept apart so that a service certificate can never
//! pass as a cluster identity, and so that a test has a real CA at hand
//! that the other endpoints must refuse.

use super::{Ctx, lock};
use crate::sh::{self, Res};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// A CA: `<file>.crt` and `<file>.key` in the pki directory.
pub struct Ca {
    pub file: &'static str,
    pub cn: &'static str,
}

/// The cluster CA (`ca.crt`).
pub const CLUSTER_CA: Ca = Ca {
    file: "ca",
    cn: "kubepkg-local-ca",
};

/// The CA of the services' HTTPS endpoints (`services-ca.crt`).
pub const SERVICES_CA: Ca = Ca {
    file: "services-ca",
    cn: "kubepkg-services-ca",
};

/// Names a loopback server's certificate is valid for.
pub const LOOPBACK_SANS: &str = "IP:127.0.0.1,IP:::1,DNS:localhost";

/// Serving certificates signed by [`SERVICES_CA`]: `(file, common name)`.
const SERVICE_CERTS: &[(&str, &str)] =
    &[("registry", "kubepkg-registry"), ("minio", "kubepkg-minio")];

/// `target/kubepkg-env/pki`.
pub fn dir(ctx: &Ctx) -> PathBuf {
    ctx.root.join("pki")
}

/// The services CA certificate (PEM file).
pub fn services_ca(ctx: &Ctx) -> PathBuf {
    dir(ctx).join(format!("{}.crt", SERVICES_CA.file))
}

/// The certificate and key of a service (`registry`, `minio`).
pub fn service_cert(ctx: &Ctx, name: &str) -> (PathBuf, PathBuf) {
    let d = dir(ctx);
    (d.join(format!("{name}.crt")), d.join(format!("{name}.key")))
}

/// Serialises the generation of one CA's certificates (`ca`, a
/// [`Ca::file`]): threads of one xtask through a mutex, xtask processes
/// through a lock file. The two CAs' certificates are made in parallel.
pub fn guarded<T>(ctx: &Ctx, ca: &Ca, f: impl FnOnce(&Path) -> Res<T>) -> Res<T> {
    static CLUSTER: Mutex<()> = Mutex::new(());
    static SERVICES: Mutex<()> = Mutex::new(());
    let m = if ca.file == SERVICES_CA.file {
        &SERVICES
    } else {
        &CLUSTER
    };
    let _g = m.lock().unwrap_or_else(|p| p.into_inner());
    let d = dir(ctx);
    sh::mkdir(&d)?;
    super::set_mode(&d, 0o700)?;
    let _l = lock::exclusive(&lock::server_lock(ctx, &format!("pki-{}", ca.file)))?;
    f(&d)
}

fn openssl(dir: &Path, args: &[&str]) -> Res {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    sh::output(&mut c)
        .map(|_| ())
        .map_err(|e| format!("generating certificates: {e}"))
}

/// Makes a self-signed CA unless its certificate exists. The certificate
/// is written under a temporary name and renamed, so a certificate that
/// exists is complete.
pub fn ensure_ca(dir: &Path, ca: &Ca) -> Res {
    let crt = format!("{}.crt", ca.file);
    if dir.join(&crt).exists() {
        return Ok(());
    }
    let tmp = format!("{crt}.tmp");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{}.key", ca.file),
            "-out",
            &tmp,
            "-days",
            "3650",
            "-subj",
            &format!("/CN={}", ca.cn),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
    )?;
    super::set_mode(&dir.join(format!("{}.key", ca.file)), 0o600)?;
    std::fs::rename(dir.join(&tmp), dir.join(&crt)).map_err(|e| format!("{crt}: {e}"))
}

/// The extension file of a serving certificate valid for `sans`.
fn serving_ext(sans: &str) -> String {
    format!(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName={sans}\n"
    )
}

/// Makes `<name>.crt` / `<name>.key`, a serving certificate for `sans`
/// signed by `ca`, unless the certificate exists.
pub fn ensure_serving(dir: &Path, ca: &Ca, name: &str, cn: &str, sans: &str) -> Res {
    let crt = format!("{name}.crt");
    if dir.join(&crt).exists() {
        return Ok(());
    }
    sh::write(&dir.join(format!("{name}.ext")), serving_ext(sans))?;
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={cn}"),
        ],
    )?;
    super::set_mode(&dir.join(format!("{name}.key")), 0o600)?;
    let tmp = format!("{crt}.tmp");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{}.crt", ca.file),
            "-CAkey",
            &format!("{}.key", ca.file),
            "-CAcreateserial",
            "-out",
            &tmp,
            "-days",
            "3650",
            "-extfile",
            &format!("{name}.ext"),
        ],
    )?;
    std::fs::rename(dir.join(&tmp), dir.join(&crt)).map_err(|e| format!("{crt}: {e}"))
}

/// The services CA and the registry's and MinIO's serving certificates.
pub fn ensure_services(ctx: &Ctx) -> Res {
    guarded(ctx, &SERVICES_CA, |d| {
        ensure_ca(d, &SERVICES_CA)?;
        for (name, cn) in SERVICE_CERTS {
            ensure_serving(d, &SERVICES_CA, name, cn, LOOPBACK_SANS)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_certificates_are_for_servers_on_loopback() {
        let ext = serving_ext(LOOPBACK_SANS);
        assert!(ext.contains("extendedKeyUsage=serverAuth\n"));
        assert!(ext.contains("basicConstraints=CA:FALSE"));
        for san in ["IP:127.0.0.1", "DNS:localhost"] {
            assert!(LOOPBACK_SANS.split(',').any(|s| s == san), "{san}");
        }
    }

    #[test]
    fn the_two_cas_and_every_certificate_have_their_own_files() {
        let mut files = vec![CLUSTER_CA.file, SERVICES_CA.file, "apiserver", "kwok", "sa"];
        files.extend(SERVICE_CERTS.iter().map(|(f, _)| *f));
        let mut dedup = files.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), files.len(), "{files:?}");
    }
}
