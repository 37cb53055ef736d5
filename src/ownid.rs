//! OwnID's signature scheme (pure): HMAC-SHA256 over `body + "." + timestamp`.
