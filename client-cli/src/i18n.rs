//! The CLI's user-facing text, in Japanese when the locale is `ja*` and English otherwise. The server's
//! stable error codes are mapped to text here, on the client side; the codes themselves never change.

use renkei_protocol::{ErrorCode, Profession};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// From `LC_ALL`, then `LC_MESSAGES`, then `LANG` — the first one set decides, as in POSIX.
    pub fn detect() -> Self {
        Self::from_env(|k| std::env::var(k).ok())
    }

    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"].into_iter().find_map(|k| get(k).filter(|v| !v.is_empty()));
        match locale {
            Some(l) if l.to_ascii_lowercase().starts_with("ja") => Self::Ja,
            _ => Self::En,
        }
    }

    fn pick(self, ja: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }
}

/// Messages the CLI prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Password,
    NewPassword,
    RepeatPassword,
    CurrentPassword,
    PasswordsDiffer,
    TotpCode,
    LoggedIn,
    LoggedOut,
    PasswordChanged,
    PasswordSet,
    MustChangePassword,
    MustEnrollTotp,
    TotpScan,
    TotpEnabled,
    RecoveryCodes,
    TotpResetDone,
    SessionRevoked,
    NotLoggedIn,
    NoServer,
    UserCreated,
    SetupTokenHandOver,
    Disabled,
    Enabled,
    NoSuchGroup,
    AmbiguousGroup,
    NoSuchInvitation,
    GroupOpened,
    ConsentRecorded,
    RemovedByConsent,
    Invited,
    Joined,
    Declined,
    MemberRemoved,
    LeftGroup,
    HandoverRequested,
    HandoverAccepted,
    HandoverDeclined,
    Archived,
    CommunityMemberAdded,
    SeenMark,
    Reconnected,
    Disconnected,
    NowFollowing,
    OffHours,
    ChatHelp,
    ChatConfirmHint,
    NothingToConfirm,
    Downloading,
    Uploading,
    FileExists,
    ServerUnreachable,
    ServerWantsHttps,
    ServerWantsHttp,
    CertificateNotTrusted,
    ServerTimedOut,
    UnknownAction,
    NotATime,
    OnlyAdministrators,
    OnlyPhysicians,
    OnlyAttendingPhysician,
    OnlyAuthor,
    NoSuchUser,
    NextVisit,
    PolicyChanged,
    PolicyUnchanged,
    RecordComplete,
    RecordIncomplete,
    LinkedOrganisations,
}

impl Msg {
    pub fn text(self, lang: Lang) -> &'static str {
        use Msg::*;
        match self {
            Password => lang.pick("パスワード: ", "Password: "),
            NewPassword => lang.pick("新しいパスワード（13文字以上）: ", "New password (at least 13 characters): "),
            RepeatPassword => lang.pick("もう一度入力: ", "Repeat: "),
            CurrentPassword => lang.pick("現在のパスワード: ", "Current password: "),
            PasswordsDiffer => lang.pick("2回の入力が一致しません", "the two passwords differ"),
            TotpCode => lang.pick("確認コード（6桁）: ", "Authenticator code (6 digits): "),
            LoggedIn => lang.pick("ログインしました", "Logged in"),
            LoggedOut => lang.pick("ログアウトしました", "Logged out"),
            PasswordChanged => lang.pick(
                "パスワードを変更しました。他の端末のセッションは終了しました",
                "Password changed; your other sessions were ended",
            ),
            PasswordSet => lang.pick(
                "パスワードを設定しました。`renkei login` でログインできます",
                "Password set; you can now `renkei login`",
            ),
            MustChangePassword => lang.pick(
                "初期パスワードの変更が必要です: renkei passwd",
                "You must change the initial password: renkei passwd",
            ),
            MustEnrollTotp => lang.pick(
                "二要素認証の登録が必要です: renkei totp enroll",
                "You must enrol a second factor: renkei totp enroll",
            ),
            TotpScan => lang.pick(
                "認証アプリでQRコードを読み取るか、シークレットを入力してください",
                "Scan the QR code with an authenticator app, or type the secret",
            ),
            TotpEnabled => lang.pick("二要素認証を有効にしました", "Two-factor authentication enabled"),
            RecoveryCodes => lang.pick(
                "回復コード（一度だけ表示されます。スマートフォンを紛失した時、6桁のコードの代わりに1つずつ使えます。安全な場所に保管してください）:",
                "Recovery codes (shown this once; each signs you in once in place of the 6-digit code if your phone is lost — keep them safe):",
            ),
            TotpResetDone => lang.pick(
                "二要素認証をリセットし、すべてのセッションを終了しました。ログイン後に再登録してもらってください",
                "Second factor reset and every session ended; the user logs in and enrols again",
            ),
            SessionRevoked => lang.pick("セッションを終了しました", "Session ended"),
            NotLoggedIn => lang.pick("ログインしていません: renkei login", "Not logged in: renkei login"),
            NoServer => lang
                .pick("サーバが未設定です: --server URL を指定してください", "No server configured: pass --server URL"),
            ServerUnreachable => lang.pick(
                "サーバに接続できません: サーバが動いているか、--server のアドレスとポートが正しいか確認してください",
                "Cannot reach the server: check that it is running and that the address and port of --server are right",
            ),
            ServerWantsHttps => lang.pick(
                "このサーバは HTTPS で応答します: --server を https:// で始めてください",
                "This server speaks HTTPS: start --server with https://",
            ),
            ServerWantsHttp => lang.pick(
                "このサーバは暗号化なし（HTTP）で応答します: --server を http:// で始めるか、サーバに TLS を設定してください",
                "This server speaks plain HTTP: start --server with http://, or configure TLS on the server",
            ),
            CertificateNotTrusted => lang.pick(
                "サーバの証明書を信頼できません: 自己署名の証明書なら --ca-cert ファイル を指定し、そうでなければアドレスを確認してください",
                "The server's certificate is not trusted: for a self-signed one pass --ca-cert FILE; otherwise check the address",
            ),
            OnlyAdministrators => lang.pick("この操作は管理者（ICT 窓口）だけができます", "only administrators (the ICT desk) may do this"),
            OnlyPhysicians => lang.pick("患者グループを作成できるのは医師だけです", "only a physician opens a patient group"),
            NextVisit => lang.pick("次回訪問", "Next visit"),
            PolicyChanged => lang.pick("方針変更あり", "Policy changed"),
            PolicyUnchanged => lang.pick("方針変更なし", "Policy unchanged"),
            RecordComplete => lang.pick("揃っている", "complete"),
            RecordIncomplete => lang.pick("不足あり", "incomplete"),
            LinkedOrganisations => lang.pick("連携する事業所", "Linked organisations"),
            OnlyAttendingPhysician => {
                lang.pick("この操作は主治医だけができます", "only the attending physician may do this")
            }
            OnlyAuthor => lang.pick("投稿を修正・削除できるのは書いた本人だけです", "only the author edits or deletes a post"),
            NoSuchUser => lang.pick("そのログイン名（または ID）の利用者はいません", "no user with that login (or id)"),
            UnknownAction => lang.pick("そのような操作はありません。次のいずれかです", "no such action; one of these"),
            NotATime => lang.pick(
                "日付（2026-12-01）か RFC 3339 の日時で指定してください",
                "give a date (2026-12-01) or an RFC 3339 time",
            ),
            ServerTimedOut => lang.pick(
                "サーバの応答がありません（時間切れ）: 電波の良い場所で、もう一度試してください",
                "The server did not answer in time: try again, where the connection is better",
            ),
            UserCreated => lang.pick("利用者を登録しました", "User created"),
            SetupTokenHandOver => lang.pick(
                "本人確認のうえ、次の設定用トークンを本人に渡してください（1回限り有効）",
                "After checking their identity, hand this one-time setup token to the user",
            ),
            Disabled => {
                lang.pick("アカウントを停止しました（全セッション終了）", "Account disabled (all sessions ended)")
            }
            Enabled => lang.pick("アカウントを再開しました", "Account enabled"),
            NoSuchGroup => lang.pick(
                "該当するグループがありません（renkei group list で確認できます）",
                "No such group among yours (see renkei group list)",
            ),
            AmbiguousGroup => {
                lang.pick("複数のグループが該当します。IDで指定してください", "Several groups match; give the id")
            }
            NoSuchInvitation => lang.pick(
                "該当する招待がありません（renkei invitations で確認できます）",
                "No such pending invitation (see renkei invitations)",
            ),
            GroupOpened => lang.pick(
                "患者グループを作成しました。次に同意を記録してください: renkei consent record",
                "Patient group opened; next, record the consent: renkei consent record",
            ),
            ConsentRecorded => lang.pick("同意を記録しました", "Consent recorded"),
            RemovedByConsent => lang.pick(
                "同意の範囲外となったため、次の方をグループから外しました",
                "No longer covered by the consent, removed from the group",
            ),
            Invited => lang.pick("招待しました", "Invited"),
            Joined => lang.pick("グループに参加しました", "Joined the group"),
            Declined => lang.pick("招待を辞退しました", "Invitation declined"),
            MemberRemoved => lang.pick("メンバーを外しました", "Member removed"),
            LeftGroup => lang.pick("グループから退出しました", "Left the group"),
            HandoverRequested => lang.pick(
                "主治医の引継ぎを依頼しました（相手の承諾待ち）",
                "Handover requested; awaiting the other physician's acceptance",
            ),
            HandoverAccepted => lang.pick("主治医を引き継ぎました", "You are now the attending physician"),
            HandoverDeclined => lang.pick("引継ぎを辞退しました", "Handover declined"),
            Archived => lang.pick("グループをアーカイブしました（閲覧のみ）", "Group archived (read-only)"),
            CommunityMemberAdded => lang.pick("メンバーを追加しました", "Member added"),
            SeenMark => lang.pick("見ました", "Seen"),
            OffHours => lang.pick(
                "次の方は現在対応時間外です。すぐの返信は期待しないでください（急ぎは電話で）:",
                "These addressees are off hours now; do not expect an immediate reply (urgent matters go by phone):",
            ),
            Reconnected => lang.pick("再接続しました（取りこぼしなし）", "Reconnected (nothing missed)"),
            Disconnected => lang.pick("接続が切れました。再接続しています…", "Disconnected; reconnecting…"),
            NowFollowing => lang.pick("参加したグループも表示します:", "Now following a group you joined:"),
            ChatHelp => lang.pick(
                "1行入力すると投稿します。/treatment 本文＝主治医への治療の質問、/careplan 本文＝ケアマネへの質問、\
                 /confirm＝緊急ではないと確認して直前の投稿を再送、/quit＝終了。緊急の連絡は電話で。",
                "Type a line to post it. /treatment TEXT asks the attending physician, /careplan TEXT the care \
                 manager, /confirm re-sends the refused post confirming it is not an emergency, /quit leaves. \
                 Emergencies go by telephone.",
            ),
            ChatConfirmHint => lang.pick(
                "緊急でなければ /confirm で送信できます（記録されます）。緊急なら今すぐ電話してください。",
                "If it is not an emergency, /confirm sends it (the override is recorded). If it is, call now.",
            ),
            NothingToConfirm => lang.pick("確認して再送する投稿はありません", "There is no refused post to confirm"),
            Downloading => lang.pick("ダウンロード中", "Downloading"),
            Uploading => lang.pick("アップロード中", "Uploading"),
            FileExists => lang.pick(
                "同じ名前のファイルが既にあります。--output で別の名前を指定してください",
                "A file of that name exists already; choose another with --output",
            ),
        }
    }
}

/// The text for a server error code.
pub fn error_text(code: ErrorCode, lang: Lang) -> &'static str {
    use ErrorCode::*;
    match code {
        MalformedRequest => lang.pick("要求の形式が正しくありません", "The request is malformed"),
        ValidationFailed => lang.pick("入力内容に誤りがあります", "Some fields are invalid"),
        UnsupportedMediaType => lang.pick("要求の形式（Content-Type）が正しくありません", "Wrong content type"),
        PayloadTooLarge => lang.pick("送信内容が大きすぎます", "The request is too large"),
        Unauthenticated => lang.pick(
            "ログインが必要です（セッションが切れた可能性があります）: renkei login",
            "Please log in (your session may have expired): renkei login",
        ),
        InvalidCredentials => lang.pick("ログイン名またはパスワードが違います", "Wrong login or password"),
        TotpRequired => lang.pick("確認コードが必要です", "An authenticator code is required"),
        TotpInvalid => {
            lang.pick("確認コードが違うか、既に使われています", "The authenticator code is wrong or was already used")
        }
        TotpEnrollmentRequired => lang
            .pick("二要素認証の登録が必要です: renkei totp enroll", "Enrol a second factor first: renkei totp enroll"),
        PasswordChangeRequired => lang
            .pick("初期パスワードの変更が必要です: renkei passwd", "Change your initial password first: renkei passwd"),
        PasswordTooWeak => lang.pick(
            "パスワードが基準を満たしていません（13文字以上、二要素認証ありなら8文字以上）",
            "The password does not meet the policy (13+ characters, or 8+ with two-factor authentication)",
        ),
        SetupTokenInvalid => lang.pick(
            "設定用トークンが無効、期限切れ、または使用済みです",
            "The setup token is invalid, expired or already used",
        ),
        AccountDisabled => lang.pick(
            "このアカウントは停止されています。管理者に連絡してください",
            "This account is disabled; contact your administrator",
        ),
        TooManyAttempts => lang.pick(
            "失敗が続いたため、しばらく待ってから再度お試しください",
            "Too many failed attempts; wait a little and try again",
        ),
        Forbidden => lang.pick("この操作の権限がありません", "You are not allowed to do this"),
        ReauthenticationRequired => lang.pick(
            "管理操作の前にパスワードの再入力が必要です: renkei login",
            "Enter your password again before an administrator's action: renkei login",
        ),
        NotFound => lang.pick("見つかりません", "Not found"),
        MethodNotAllowed => lang.pick("この操作はできません", "Operation not supported"),
        Conflict => lang.pick("既存の内容と重複しています", "This conflicts with existing data"),
        OutsideConsentScope => lang.pick(
            "この方は患者・家族の同意の範囲外です（同意の範囲を見直してください）",
            "This person is outside the scope the patient and family consented to",
        ),
        ConsentRequired => lang.pick(
            "先に患者・家族の同意を記録してください: renkei consent record",
            "Record the patient's or family's consent first: renkei consent record",
        ),
        AlreadyMember => lang.pick("既にメンバーか、招待済みです", "Already a member or already invited"),
        InvitationExpired => lang.pick(
            "招待の有効期限が切れています。主治医に再招待を依頼してください",
            "The invitation has expired; ask the attending physician to invite you again",
        ),
        UnsupportedAttachmentType => lang.pick(
            "添付できるのは JPEG・PNG・WebP の画像と PDF だけです",
            "Only JPEG, PNG and WebP images and PDF documents can be attached",
        ),
        AttachmentUnreadable => lang.pick(
            "画像を読み取れません（途中で切れているか、大きすぎます）",
            "The image cannot be read (cut off, corrupt or too large)",
        ),
        AttachmentsNotAllowedInCommunityGroup => lang.pick(
            "全体グループには添付できません。患者グループで共有してください",
            "Community groups take no attachments; share the file in the patient's own group",
        ),
        TooManyUploads => lang.pick(
            "アップロードが混み合っています。少し待ってから再度お試しください",
            "The server is busy with other uploads; try again in a moment",
        ),
        EmergencyUseProhibited => lang.pick(
            "緊急・急ぎの連絡は renkei ではなく電話でお願いします。緊急でない場合は --confirm-not-emergency を付けて再送してください",
            "Emergencies go by telephone, never through renkei. If this is not an emergency, send it again with --confirm-not-emergency",
        ),
        PatientInfoInCommunityGroup => lang.pick(
            "全体グループでは個別の患者情報を共有できません。その患者のグループに投稿してください",
            "Individual patient information is not shared in community groups; post it in the patient's own group",
        ),
        NoCareManagerInGroup => lang.pick(
            "このグループにはケアマネジャーがいません。ケアプランの質問は送れません",
            "There is no care manager in this group to address a care-plan question to",
        ),
        RateLimited => {
            lang.pick("送信が多すぎます。少し待ってから再度お試しください", "Too many messages at once; slow down")
        }
        GroupNotActive => lang.pick(
            "このグループはアーカイブ済みか、同意撤回により閲覧のみです",
            "This group is archived, or read-only since consent was withdrawn",
        ),
        Unavailable => lang.pick(
            "サーバが一時的に利用できません。しばらくしてから再度お試しください",
            "The server is temporarily unavailable; try again shortly",
        ),
        Internal => lang.pick("サーバ内部でエラーが発生しました", "The server had an internal error"),
    }
}

/// A membership role's name for people.
pub fn role_text(r: renkei_protocol::MemberRole, lang: Lang) -> &'static str {
    match r {
        renkei_protocol::MemberRole::AttendingPhysician => lang.pick("主治医", "attending physician"),
        renkei_protocol::MemberRole::Member => lang.pick("メンバー", "member"),
    }
}

/// A group status for people.
pub fn status_text(s: renkei_protocol::GroupStatus, lang: Lang) -> &'static str {
    match s {
        renkei_protocol::GroupStatus::Active => lang.pick("有効", "active"),
        renkei_protocol::GroupStatus::ReadOnly => lang.pick("閲覧のみ（同意撤回）", "read-only (consent withdrawn)"),
        renkei_protocol::GroupStatus::Archived => lang.pick("アーカイブ済み", "archived"),
    }
}

/// A profession's name for people.
pub fn profession_text(p: Profession, lang: Lang) -> &'static str {
    p.name(match lang {
        Lang::Ja => renkei_protocol::words::Lang::Ja,
        Lang::En => renkei_protocol::words::Lang::En,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn japanese_only_for_ja_locales_and_lc_all_wins() {
        assert_eq!(Lang::from_env(env(&[("LANG", "ja_JP.UTF-8")])), Lang::Ja);
        assert_eq!(Lang::from_env(env(&[("LANG", "en_US.UTF-8")])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LC_ALL", "C"), ("LANG", "ja_JP.UTF-8")])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LC_ALL", ""), ("LANG", "ja_JP.UTF-8")])), Lang::Ja);
        assert_eq!(Lang::from_env(env(&[])), Lang::En);
    }

    #[test]
    fn error_codes_have_text_in_both_languages() {
        assert_eq!(error_text(ErrorCode::InvalidCredentials, Lang::Ja), "ログイン名またはパスワードが違います");
        assert_eq!(error_text(ErrorCode::InvalidCredentials, Lang::En), "Wrong login or password");
    }
}
