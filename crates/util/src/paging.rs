//! The platform's page type and pagination helpers.
//!
//! Every list endpoint of the platform answers with a [`Page`]:
//!
//! ```json
//! {"cur_page": 2, "cur_page_size": 10, "total": 25, "total_page": 3, "data": [...]}
//! ```
//!
//! and takes a [`PageRequest`] (`page` is 1-based, `page_size` within
//! `1..=`[`MAX_PAGE_SIZE`]; out-of-range values are an
//! [`Error::Invalid`], also when deserialising).
//!
//! - [`paginate`] cuts one page out of anything with a known length
//!   (a `Vec`, a slice iterator), moving or cloning only that page;
//! - [`paginate_stream`] / [`try_paginate_stream`] cut one page out of a
//!   [`Stream`] without collecting it: items before the page are read and
//!   dropped one by one, the page's items are kept, and the rest of the
//!   stream is handled according to [`Total`]:
//!   - [`Total::Count`] drains the remaining items to count them, so
//!     `total` and `total_page` are exact — at the cost of reading the
//!     whole stream (every page of a remote listing);
//!   - [`Total::AtLeast`] reads at most one item past the page, so
//!     `total` is a lower bound: `offset + page length`, plus one when
//!     another item exists. That is enough for "next page" buttons and
//!     keeps the cost proportional to the page's position.
//!
//! ```
//! use kubepkg_util::paging::{paginate, PageRequest};
//!
//! let req = PageRequest::new(2, 10)?;
//! let page = paginate((1..=25).collect::<Vec<u32>>(), &req);
//! assert_eq!(page.data, (11..=20).collect::<Vec<u32>>());
//! assert_eq!((page.total, page.total_page), (25, 3));
//! let json = serde_json::to_string(&page).expect("serialisable");
//! assert!(json.starts_with(r#"{"cur_page":2,"cur_page_size":10,"total":25,"total_page":3,"data":[11,"#));
//! # Ok::<(), kubepkg_util::Error>(())
//! ```

use futures::{Stream, StreamExt, TryStream, TryStreamExt};

use crate::error::{Error, Result};

/// The largest allowed page size.
pub const MAX_PAGE_SIZE: u64 = 1000;
/// The page size used when a request does not give one.
pub const DEFAULT_PAGE_SIZE: u64 = 20;

const WHAT: &str = "page request";

/// One page of results, with the platform's JSON field names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Page<T> {
    /// The 1-based number of this page.
    pub cur_page: u64,
    /// The requested page size (the last page may hold fewer items).
    pub cur_page_size: u64,
    /// The number of items over all pages.
    pub total: u64,
    /// The number of pages: `ceil(total / cur_page_size)`.
    pub total_page: u64,
    /// The items of this page.
    pub data: Vec<T>,
}

impl<T> Page<T> {
    /// Builds a page from its items and the total, computing `total_page`.
    pub fn new(req: &PageRequest, total: u64, data: Vec<T>) -> Page<T> {
        Page {
            cur_page: req.page,
            cur_page_size: req.page_size,
            total,
            total_page: total.div_ceil(req.page_size.max(1)),
            data,
        }
    }

    /// The same page with every item transformed.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            cur_page: self.cur_page,
            cur_page_size: self.cur_page_size,
            total: self.total,
            total_page: self.total_page,
            data: self.data.into_iter().map(f).collect(),
        }
    }

    /// Whether a page follows this one.
    pub fn has_next(&self) -> bool {
        self.cur_page < self.total_page
    }
}

/// A validated request for one page: `page` ≥ 1, `page_size` in
/// `1..=`[`MAX_PAGE_SIZE`]. Deserialising applies the same checks and the
/// defaults `page = 1`, `page_size = `[`DEFAULT_PAGE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawPageRequest")]
pub struct PageRequest {
    page: u64,
    page_size: u64,
}

#[derive(serde::Deserialize)]
struct RawPageRequest {
    #[serde(default = "first_page")]
    page: u64,
    #[serde(default = "default_page_size")]
    page_size: u64,
}

fn first_page() -> u64 {
    1
}

fn default_page_size() -> u64 {
    DEFAULT_PAGE_SIZE
}

impl TryFrom<RawPageRequest> for PageRequest {
    type Error = Error;

    fn try_from(raw: RawPageRequest) -> Result<Self> {
        PageRequest::new(raw.page, raw.page_size)
    }
}

impl Default for PageRequest {
    /// The first page of [`DEFAULT_PAGE_SIZE`] items.
    fn default() -> Self {
        PageRequest {
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl PageRequest {
    /// A request for page `page` (1-based) of `page_size` items.
    pub fn new(page: u64, page_size: u64) -> Result<PageRequest> {
        if page == 0 {
            return Err(Error::invalid(WHAT, "page starts at 1"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::invalid(
                WHAT,
                format!("page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}"),
            ));
        }
        Ok(PageRequest { page, page_size })
    }

    /// The 1-based page number.
    pub fn page(&self) -> u64 {
        self.page
    }

    /// The page size.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// How many items come before this page (saturating).
    pub fn offset(&self) -> u64 {
        (self.page - 1).saturating_mul(self.page_size)
    }

    fn offset_usize(&self) -> usize {
        usize::try_from(self.offset()).unwrap_or(usize::MAX)
    }

    fn size_usize(&self) -> usize {
        usize::try_from(self.page_size).unwrap_or(usize::MAX)
    }
}

/// One page of `items`; only that page's items are moved (or cloned, for
/// `slice.iter().cloned()`). A page past the end has no data but the right
/// `total`.
pub fn paginate<T, I>(items: I, req: &PageRequest) -> Page<T>
where
    I: IntoIterator<Item = T>,
    I::IntoIter: ExactSizeIterator,
{
    let iter = items.into_iter();
    let total = iter.len() as u64;
    let data = iter
        .skip(req.offset_usize())
        .take(req.size_usize())
        .collect();
    Page::new(req, total, data)
}

/// One page of a slice, cloning only that page's items.
pub fn paginate_slice<T: Clone>(items: &[T], req: &PageRequest) -> Page<T> {
    paginate(items.iter().cloned(), req)
}

/// How [`paginate_stream`] computes `total`; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    /// Drain the rest of the stream to count it: exact, reads everything.
    Count,
    /// Read at most one item past the page: `total` is a lower bound that
    /// still tells whether a next page exists.
    AtLeast,
}

/// One page of a stream, without collecting it; see the [module docs](self).
pub async fn paginate_stream<S>(stream: S, req: &PageRequest, total: Total) -> Page<S::Item>
where
    S: Stream,
{
    let mut stream = std::pin::pin!(stream);
    let mut seen: u64 = 0;
    let offset = req.offset();
    while seen < offset {
        if stream.next().await.is_none() {
            return Page::new(req, seen, Vec::new());
        }
        seen += 1;
    }
    let mut data = Vec::new();
    while (data.len() as u64) < req.page_size {
        match stream.next().await {
            Some(item) => data.push(item),
            None => break,
        }
    }
    seen += data.len() as u64;
    if (data.len() as u64) == req.page_size {
        match total {
            Total::Count => {
                while stream.next().await.is_some() {
                    seen += 1;
                }
            }
            Total::AtLeast => {
                if stream.next().await.is_some() {
                    seen += 1;
                }
            }
        }
    }
    Page::new(req, seen, data)
}

/// [`paginate_stream`] for a stream of `Result`s: the first error is
/// returned (after which the stream is not read further).
pub async fn try_paginate_stream<S>(
    stream: S,
    req: &PageRequest,
    total: Total,
) -> Result<Page<S::Ok>, S::Error>
where
    S: TryStream,
{
    let mut stream = std::pin::pin!(stream.into_stream());
    let mut seen: u64 = 0;
    let offset = req.offset();
    while seen < offset {
        if stream.try_next().await?.is_none() {
            return Ok(Page::new(req, seen, Vec::new()));
        }
        seen += 1;
    }
    let mut data = Vec::new();
    while (data.len() as u64) < req.page_size {
        match stream.try_next().await? {
            Some(item) => data.push(item),
            None => break,
        }
    }
    seen += data.len() as u64;
    if (data.len() as u64) == req.page_size {
        match total {
            Total::Count => {
                while stream.try_next().await?.is_some() {
                    seen += 1;
                }
            }
            Total::AtLeast => {
                if stream.try_next().await?.is_some() {
                    seen += 1;
                }
            }
        }
    }
    Ok(Page::new(req, seen, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn req(page: u64, size: u64) -> PageRequest {
        PageRequest::new(page, size).expect("valid request")
    }

    #[test]
    fn validates_requests() {
        assert!(PageRequest::new(0, 10).is_err());
        assert!(PageRequest::new(1, 0).is_err());
        assert!(PageRequest::new(1, MAX_PAGE_SIZE + 1).is_err());
        assert!(PageRequest::new(1, MAX_PAGE_SIZE).is_ok());
        let err = PageRequest::new(1, 0).expect_err("invalid");
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
        let r: PageRequest = serde_json::from_str("{}").expect("defaults");
        assert_eq!(r, PageRequest::default());
        let r: PageRequest = serde_json::from_str(r#"{"page":3,"page_size":5}"#).expect("valid");
        assert_eq!((r.page(), r.page_size(), r.offset()), (3, 5, 10));
        assert!(serde_json::from_str::<PageRequest>(r#"{"page_size":5000}"#).is_err());
        assert!(serde_json::from_str::<PageRequest>(r#"{"page":0}"#).is_err());
    }

    #[test]
    fn paginates_collections() {
        let items: Vec<u32> = (1..=25).collect();
        let last = paginate_slice(&items, &req(3, 10));
        assert_eq!(last.data, vec![21, 22, 23, 24, 25]);
        assert_eq!(
            (last.total, last.total_page, last.has_next()),
            (25, 3, false)
        );
        let past = paginate(items.clone(), &req(9, 10));
        assert!(past.data.is_empty());
        assert_eq!(past.total, 25);
        let empty = paginate(Vec::<u32>::new(), &req(1, 10));
        assert_eq!((empty.total, empty.total_page), (0, 0));
        let huge = paginate(items.iter(), &req(u64::MAX, 1000));
        assert!(huge.data.is_empty());
        assert_eq!(
            paginate_slice(&items, &req(1, 2)).map(|x| x * 10).data,
            vec![10, 20]
        );
    }

    #[test]
    fn page_json_field_names() {
        let page = Page::new(&req(1, 2), 3, vec!["a", "b"]);
        let v = serde_json::to_value(&page).expect("ser");
        assert_eq!(
            v,
            serde_json::json!({"cur_page":1,"cur_page_size":2,"total":3,"total_page":2,"data":["a","b"]})
        );
        let back: Page<String> = serde_json::from_value(v).expect("de");
        assert_eq!(back.data, vec!["a", "b"]);
    }

    #[tokio::test]
    async fn stream_pages_read_only_what_they_need() {
        let pulled = AtomicU64::new(0);
        let counting = || {
            futures::stream::iter(1..=100u64).inspect(|_| {
                pulled.fetch_add(1, Ordering::Relaxed);
            })
        };
        let page = paginate_stream(counting(), &req(2, 10), Total::AtLeast).await;
        assert_eq!(page.data, (11..=20).collect::<Vec<_>>());
        assert_eq!(page.total, 21, "lower bound: one item past the page");
        assert!(page.has_next());
        assert_eq!(pulled.load(Ordering::Relaxed), 21);

        pulled.store(0, Ordering::Relaxed);
        let page = paginate_stream(counting(), &req(2, 10), Total::Count).await;
        assert_eq!((page.total, page.total_page), (100, 10));
        assert_eq!(pulled.load(Ordering::Relaxed), 100);

        let short = paginate_stream(
            futures::stream::iter(1..=15u64),
            &req(2, 10),
            Total::AtLeast,
        )
        .await;
        assert_eq!(
            (short.data.len(), short.total, short.has_next()),
            (5, 15, false)
        );
        let past =
            paginate_stream(futures::stream::iter(1..=5u64), &req(3, 10), Total::Count).await;
        assert_eq!((past.data.len(), past.total), (0, 5));
    }

    #[tokio::test]
    async fn try_stream_pages_stop_at_errors() {
        let ok = futures::stream::iter((1..=30u64).map(Ok::<u64, &str>));
        let page = try_paginate_stream(ok, &req(3, 10), Total::Count)
            .await
            .expect("no error");
        assert_eq!(page.data, (21..=30).collect::<Vec<_>>());
        assert_eq!(page.total, 30);
        let failing = futures::stream::iter(vec![Ok(1u64), Err("boom"), Ok(3)]);
        assert_eq!(
            try_paginate_stream(failing, &req(1, 10), Total::Count).await,
            Err("boom")
        );
    }
}
