//! HTTP: the public OwnID endpoint and the admin listener.
