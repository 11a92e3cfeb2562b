//! Credentials of every owner: encrypted writes, decrypting reads, lists of
//! metadata, and key rotation.

use kubepkg_util::secret::Secret;
use zeroize::Zeroize;

use super::rows::{
    self, CREDENTIAL_INFO_COLUMNS, CredentialInfoRow, SealedRow, check_owner, check_secret,
    owner_label, owner_parts,
};
use super::{BeginWrite, KEYS_SETTING, Store, records::*, store_error};
use crate::crypto::{Keyring, NONCE_LEN, Sealed};
use crate::error::{Error, Result};

/// Inserts or replaces one credential row; the conflict target is the owner.
pub(crate) const UPSERT_CREDENTIAL_SQL: &str = "INSERT INTO credentials \
     (owner_kind, owner_name, cluster_name, registry_name, kind, key_id, nonce, ciphertext, \
      created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
     ON CONFLICT (owner_kind, owner_name) DO UPDATE SET \
       kind = excluded.kind, key_id = excluded.key_id, nonce = excluded.nonce, \
       ciphertext = excluded.ciphertext, updated_at = excluded.updated_at \
     RETURNING owner_kind, owner_name, kind, key_id, created_at, updated_at";

/// Everything one credential write binds, sealed before the statement runs.
pub(crate) struct CredentialWrite<'a> {
    pub(crate) owner_kind: &'static str,
    pub(crate) owner_name: &'a str,
    /// The owner's row when it has one (clusters, registries): the foreign
    /// key that makes the credential go with it.
    pub(crate) cluster_ref: Option<&'a str>,
    pub(crate) registry_ref: Option<&'a str>,
    pub(crate) kind: &'static str,
    pub(crate) sealed: Sealed,
    pub(crate) now: i64,
}

/// The associated data a credential's ciphertext is bound to: its owner
/// and its kind, so a ciphertext copied onto another row cannot be read.
pub(crate) fn aad(owner_kind: &str, owner_name: &str, kind: &str) -> Vec<u8> {
    format!("kubepkg/credential/v1\n{owner_kind}/{owner_name}\n{kind}").into_bytes()
}

impl<'a> CredentialWrite<'a> {
    /// Checks the secret and encrypts it with the active key of `keys`.
    pub(crate) fn seal(
        keys: &Keyring,
        owner: &'a CredentialOwner,
        kind: CredentialKind,
        secret: &Secret<String>,
        now: i64,
    ) -> Result<CredentialWrite<'a>> {
        let (owner_kind, owner_name) = owner_parts(owner);
        let kind = rows::credential_kind_str(kind);
        check_secret(&owner_label(owner), secret.expose())?;
        let sealed = keys.encrypt(
            &aad(owner_kind, owner_name, kind),
            secret.expose().as_bytes(),
        )?;
        Ok(CredentialWrite {
            owner_kind,
            owner_name,
            cluster_ref: matches!(owner, CredentialOwner::Cluster(_)).then_some(owner_name),
            registry_ref: matches!(owner, CredentialOwner::Registry(_)).then_some(owner_name),
            kind,
            sealed,
            now,
        })
    }
}

/// Runs [`UPSERT_CREDENTIAL_SQL`] for a [`CredentialWrite`] on `$conn` (a
/// pool or a transaction of either backend); evaluates to
/// `Result<CredentialInfoRow, sqlx::Error>`.
macro_rules! upsert_credential {
    ($conn:expr, $w:expr) => {{
        let w: &$crate::store::credentials::CredentialWrite<'_> = $w;
        sqlx::query_as::<_, $crate::store::rows::CredentialInfoRow>(
            $crate::store::credentials::UPSERT_CREDENTIAL_SQL,
        )
        .bind(w.owner_kind)
        .bind(w.owner_name)
        .bind(w.cluster_ref)
        .bind(w.registry_ref)
        .bind(w.kind)
        .bind(w.sealed.key_id.as_str())
        .bind(&w.sealed.nonce[..])
        .bind(w.sealed.ciphertext.as_slice())
        .bind(w.now)
        .fetch_one($conn)
        .await
    }};
}
pub(crate) use upsert_credential;

/// Decrypts a whole credential row with `keys`.
fn open_row(keys: &Keyring, row: SealedRow) -> Result<Credential> {
    let owner = rows::owner_from_parts(&row.owner_kind, row.owner_name)?;
    let label = owner_label(&owner);
    let kind = rows::credential_kind_from_str(&row.kind)?;
    let nonce: [u8; NONCE_LEN] = row
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| Error::Decrypt {
            owner: label.clone(),
            key_id: row.key_id.clone(),
            message: format!(
                "the stored nonce has {} bytes, not {NONCE_LEN}",
                row.nonce.len()
            ),
        })?;
    let (owner_kind, owner_name) = owner_parts(&owner);
    let sealed = Sealed {
        key_id: row.key_id,
        nonce,
        ciphertext: row.ciphertext,
    };
    let mut plain = keys.decrypt(&label, &aad(owner_kind, owner_name, &row.kind), &sealed)?;
    let text = String::from_utf8(std::mem::take(&mut *plain)).map_err(|e| {
        e.into_bytes().zeroize();
        Error::Decrypt {
            owner: label.clone(),
            key_id: sealed.key_id.clone(),
            message: "the plaintext is not UTF-8".to_owned(),
        }
    })?;
    Ok(Credential {
        info: CredentialInfo {
            owner,
            kind,
            key_id: sealed.key_id,
            created_at: rows::ts("credentials.created_at", row.created_at)?,
            updated_at: rows::ts("credentials.updated_at", row.updated_at)?,
        },
        secret: Secret::new(text),
    })
}

/// The error for a write whose owner row is missing.
fn missing_owner(owner: &CredentialOwner) -> Error {
    match owner {
        CredentialOwner::Cluster(n) => Error::NotFound(format!("cluster {n:?}")),
        CredentialOwner::Registry(n) => Error::NotFound(format!("registry {n:?}")),
        CredentialOwner::Provider(n) => Error::NotFound(format!("provider {n:?}")),
    }
}

impl Store {
    /// Stores the credential of `owner`, replacing any it had, encrypted
    /// with the active key. A cluster or registry owner must exist
    /// ([`Error::NotFound`]); the credential is deleted with it.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "put_credential", target = %owner_label(owner)))]
    pub async fn put_credential(
        &self,
        owner: &CredentialOwner,
        kind: CredentialKind,
        secret: &Secret<String>,
    ) -> Result<CredentialInfo> {
        check_owner(owner)?;
        let _gate = self.key_gate().read().await;
        let write = CredentialWrite::seal(&self.keyring(), owner, kind, secret, rows::now_ms())?;
        let row = with_pool!(self, pool => upsert_credential!(pool, &write));
        match row {
            Ok(row) => row.try_into(),
            Err(e) if super::is_foreign_key_violation(&e) => Err(missing_owner(owner)),
            Err(e) => Err(store_error("storing a credential", e)),
        }
    }

    /// The credential of `owner`, decrypted. [`Error::NotFound`] when it has
    /// none; [`Error::Decrypt`] when its key is not in the keyring or the
    /// row was altered.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "credential", target = %owner_label(owner)))]
    pub async fn credential(&self, owner: &CredentialOwner) -> Result<Credential> {
        let (owner_kind, owner_name) = owner_parts(owner);
        const SQL: &str = "SELECT owner_kind, owner_name, kind, key_id, nonce, ciphertext, \
             created_at, updated_at FROM credentials WHERE owner_kind = $1 AND owner_name = $2";
        let row = with_pool!(self, pool => sqlx::query_as::<_, SealedRow>(SQL)
            .bind(owner_kind)
            .bind(owner_name)
            .fetch_optional(pool)
            .await)
        .map_err(|e| store_error("reading a credential", e))?;
        match row {
            Some(row) => open_row(&self.keyring(), row),
            None => Err(Error::NotFound(format!(
                "credential of {}",
                owner_label(owner)
            ))),
        }
    }

    /// Every credential's metadata (no secret material), sorted by owner.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "list_credentials", target = ""))]
    pub async fn list_credentials(&self) -> Result<Vec<CredentialInfo>> {
        let sql = format!(
            "SELECT {CREDENTIAL_INFO_COLUMNS} FROM credentials ORDER BY owner_kind, owner_name"
        );
        let rows = with_pool!(self, pool => sqlx::query_as::<_, CredentialInfoRow>(&sql)
            .fetch_all(pool)
            .await)
        .map_err(|e| store_error("listing credentials", e))?;
        rows::convert(rows)
    }

    /// Deletes the credential of `owner`; [`Error::NotFound`] when it has
    /// none.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "delete_credential", target = %owner_label(owner)))]
    pub async fn delete_credential(&self, owner: &CredentialOwner) -> Result<()> {
        let (owner_kind, owner_name) = owner_parts(owner);
        const SQL: &str = "DELETE FROM credentials WHERE owner_kind = $1 AND owner_name = $2";
        let done = with_pool!(self, pool => sqlx::query(SQL)
            .bind(owner_kind)
            .bind(owner_name)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| store_error("deleting a credential", e))?;
        if done == 0 {
            return Err(Error::NotFound(format!(
                "credential of {}",
                owner_label(owner)
            )));
        }
        Ok(())
    }

    /// Re-encrypts every credential under key `old_id` with key `new_id`,
    /// in one transaction, and makes `new_id` the active key. Returns how
    /// many rows were re-encrypted.
    ///
    /// Both ids must be in the keyring ([`Error::Config`] naming
    /// `encryption.keys`). When any row cannot be decrypted with the old key
    /// ([`Error::Decrypt`]) or the database fails, nothing changes: every
    /// row stays under the key it had, and the active key stays as it was.
    ///
    /// The active key is this process's: other processes sharing a
    /// PostgreSQL store must have the new key in their keyrings before the
    /// rotation and make it active in their configuration after it.
    #[tracing::instrument(level = "debug", name = "store", skip_all,
        fields(backend = %self.backend(), operation = "rotate_key", target = %format!("{old_id}->{new_id}")))]
    pub async fn rotate_key(&self, old_id: &str, new_id: &str) -> Result<u64> {
        // No credential write (nor another rotation) may run between reading
        // the old rows and switching the active key.
        let _gate = self.key_gate().write().await;
        let keys = self.keyring();
        for id in [old_id, new_id] {
            if !keys.contains(id) {
                return Err(Error::config(
                    KEYS_SETTING,
                    format!(
                        "key id {id:?} is not in the keyring (it has {})",
                        keys.key_ids().join(", ")
                    ),
                ));
            }
        }
        let rotated = keys.with_active(new_id)?;
        let count = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            const SELECT: &str = "SELECT owner_kind, owner_name, kind, key_id, nonce, \
                 ciphertext, created_at, updated_at FROM credentials WHERE key_id = $1 \
                 ORDER BY owner_kind, owner_name";
            const UPDATE: &str = "UPDATE credentials SET key_id = $1, nonce = $2, \
                 ciphertext = $3 WHERE owner_kind = $4 AND owner_name = $5 AND key_id = $6";
            let old_rows = sqlx::query_as::<_, SealedRow>(SELECT)
                .bind(old_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(|e| store_error("reading credentials to rotate", e))?;
            let mut count = 0u64;
            for row in old_rows {
                let owner_kind = row.owner_kind.clone();
                let owner_name = row.owner_name.clone();
                let kind = row.kind.clone();
                let credential = open_row(&keys, row)?;
                let sealed = rotated.encrypt_with(
                    new_id,
                    &aad(&owner_kind, &owner_name, &kind),
                    credential.secret.expose().as_bytes(),
                )?;
                let done = sqlx::query(UPDATE)
                    .bind(sealed.key_id.as_str())
                    .bind(&sealed.nonce[..])
                    .bind(sealed.ciphertext.as_slice())
                    .bind(owner_kind.as_str())
                    .bind(owner_name.as_str())
                    .bind(old_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error("re-encrypting a credential", e))?;
                count += done.rows_affected();
            }
            tx.commit()
                .await
                .map_err(|e| store_error("committing the key rotation", e))?;
            count
        });
        self.set_keyring(rotated);
        tracing::info!(
            old = old_id,
            new = new_id,
            rows = count,
            "rotated the credential key"
        );
        Ok(count)
    }
}
