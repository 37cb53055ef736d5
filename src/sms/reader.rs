//! A cursor over PDU octets that turns running out of input into an error naming the
//! field, so the decoders never index past the end.

use super::PduError;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, PduError> {
        let (&first, rest) = self
            .bytes
            .split_first()
            .ok_or(PduError::Truncated { field })?;
        self.bytes = rest;
        Ok(first)
    }

    pub(crate) fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], PduError> {
        if len > self.bytes.len() {
            return Err(PduError::Truncated { field });
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], PduError> {
        let taken = self.take(N, field)?;
        let mut out = [0; N];
        out.copy_from_slice(taken);
        Ok(out)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
