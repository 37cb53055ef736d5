//! The status of an SMS-STATUS-REPORT (TS 23.040 9.2.3.15): delivered, still being tried,
//! or failed, and a description of each value.

use std::fmt;

/// A TP-ST value. Any octet is a status: reserved values are kept as received and, as
/// TS 23.040 9.2.3.15 asks, treated like "service rejected" (a final failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryStatus(pub u8);

/// The three things a status report can mean for the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCategory {
    /// 0x00..=0x1F: the transaction is complete; the message reached the recipient.
    Delivered,
    /// 0x20..=0x3F: a temporary error; the service centre is still trying, another report
    /// will follow.
    Pending,
    /// 0x40..=0xFF: final; the message will not be delivered (a permanent error, or a
    /// temporary one the service centre has given up on).
    Failed,
}

impl DeliveryStatus {
    /// The raw TP-ST octet.
    pub fn code(self) -> u8 {
        self.0
    }

    pub fn category(self) -> StatusCategory {
        match self.0 {
            0x00..=0x1F => StatusCategory::Delivered,
            0x20..=0x3F => StatusCategory::Pending,
            _ => StatusCategory::Failed,
        }
    }

    /// The message was delivered (0x00..=0x1F).
    pub fn is_delivered(self) -> bool {
        self.category() == StatusCategory::Delivered
    }

    /// The service centre is still trying (0x20..=0x3F); the report is not final.
    pub fn is_pending(self) -> bool {
        self.category() == StatusCategory::Pending
    }

    /// The same as [`is_pending`](Self::is_pending): a temporary error the service centre
    /// is still retrying. (Temporary errors it has stopped retrying, 0x60..=0x7F, are
    /// final and count as failed.)
    pub fn is_temporary(self) -> bool {
        self.is_pending()
    }

    /// The message will not be delivered (0x40..=0xFF).
    pub fn is_failed(self) -> bool {
        self.category() == StatusCategory::Failed
    }

    /// The same as [`is_failed`](Self::is_failed): the outcome is final and negative.
    pub fn is_permanent(self) -> bool {
        self.is_failed()
    }

    /// Whether no further report is to be expected for the message.
    pub fn is_final(self) -> bool {
        !self.is_pending()
    }

    /// What the value means, in the words of TS 23.040 9.2.3.15.
    pub fn describe(self) -> &'static str {
        match self.0 {
            0x00 => "short message received by the SME",
            0x01 => {
                "short message forwarded by the SC to the SME but the SC is unable to confirm delivery"
            }
            0x02 => "short message replaced by the SC",
            0x03..=0x0F => "transaction completed (reserved value)",
            0x10..=0x1F => "transaction completed (SC-specific value)",
            0x20 => "congestion; the SC is still trying",
            0x21 => "SME busy; the SC is still trying",
            0x22 => "no response from SME; the SC is still trying",
            0x23 => "service rejected; the SC is still trying",
            0x24 => "quality of service not available; the SC is still trying",
            0x25 => "error in SME; the SC is still trying",
            0x26..=0x2F => "temporary error, the SC is still trying (reserved value)",
            0x30..=0x3F => "temporary error, the SC is still trying (SC-specific value)",
            0x40 => "remote procedure error",
            0x41 => "incompatible destination",
            0x42 => "connection rejected by SME",
            0x43 => "not obtainable",
            0x44 => "quality of service not available",
            0x45 => "no interworking available",
            0x46 => "SM validity period expired",
            0x47 => "SM deleted by originating SME",
            0x48 => "SM deleted by SC administration",
            0x49 => "SM does not exist",
            0x4A..=0x4F => "permanent error (reserved value)",
            0x50..=0x5F => "permanent error (SC-specific value)",
            0x60 => "congestion; the SC has stopped trying",
            0x61 => "SME busy; the SC has stopped trying",
            0x62 => "no response from SME; the SC has stopped trying",
            0x63 => "service rejected; the SC has stopped trying",
            0x64 => "quality of service not available; the SC has stopped trying",
            0x65 => "error in SME; the SC has stopped trying",
            0x66..=0x6F => "temporary error, the SC has stopped trying (reserved value)",
            0x70..=0x7F => "temporary error, the SC has stopped trying (SC-specific value)",
            _ => "reserved value, treated as service rejected",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04X} ({})", self.0, self.describe())
    }
}

impl StatusCategory {
    /// A lower-case name for display.
    pub fn name(self) -> &'static str {
        match self {
            StatusCategory::Delivered => "delivered",
            StatusCategory::Pending => "pending",
            StatusCategory::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: u8, category: StatusCategory, description: &str) {
        let status = DeliveryStatus(code);
        assert_eq!(status.category(), category, "{code:#04X}");
        assert_eq!(status.describe(), description, "{code:#04X}");
        assert_eq!(status.is_delivered(), category == StatusCategory::Delivered);
        assert_eq!(status.is_pending(), category == StatusCategory::Pending);
        assert_eq!(status.is_temporary(), category == StatusCategory::Pending);
        assert_eq!(status.is_failed(), category == StatusCategory::Failed);
        assert_eq!(status.is_permanent(), category == StatusCategory::Failed);
        assert_eq!(status.is_final(), category != StatusCategory::Pending);
    }

    #[test]
    fn ranges_of_23040() {
        use StatusCategory::*;
        check(0x00, Delivered, "short message received by the SME");
        check(0x02, Delivered, "short message replaced by the SC");
        check(0x1F, Delivered, "transaction completed (SC-specific value)");
        check(0x20, Pending, "congestion; the SC is still trying");
        check(
            0x3F,
            Pending,
            "temporary error, the SC is still trying (SC-specific value)",
        );
        check(0x40, Failed, "remote procedure error");
        check(0x46, Failed, "SM validity period expired");
        check(0x60, Failed, "congestion; the SC has stopped trying");
        check(
            0x7F,
            Failed,
            "temporary error, the SC has stopped trying (SC-specific value)",
        );
        check(0x80, Failed, "reserved value, treated as service rejected");
        check(0xFF, Failed, "reserved value, treated as service rejected");
        assert_eq!(
            DeliveryStatus(0x46).to_string(),
            "0x46 (SM validity period expired)"
        );
    }
}
