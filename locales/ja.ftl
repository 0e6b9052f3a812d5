# renkei web client — Japanese (the default). Every key here exists in en.ftl too (tests/unit/catalogue.test.ts).
app-name = renkei 連携
app-tagline = 在宅医療・介護の多職種連携

## Connection and status
status-online = 接続中
status-offline = オフライン — 書いた投稿は電波が戻ると送信されます
status-reconnecting = 再接続しています…
session-ended = セッションが終了しました。もう一度ログインしてください。
server-error = サーバーに接続できません。時間をおいてもう一度お試しください。入力した内容は残っています。
retry = 再試行
loading = 読み込み中…

## Sign-in
login-title = ログイン
login-login = ログインID
login-password = パスワード
login-totp = 確認コード（6桁）
login-totp-hint = 認証アプリに表示されている6桁の数字を入力してください。
login-use-recovery = スマートフォンを紛失した場合（回復コードを使う）
login-recovery = 回復コード
login-recovery-hint = 二要素認証の設定時に表示された回復コードを1つ入力してください。各コードは1回だけ使えます。回復コードもない場合は、医師会の ICT 窓口に二要素認証のリセットを依頼してください。
totp-recovery-title = 回復コード（この画面でのみ表示されます）
totp-recovery-hint = スマートフォンを紛失した時、6桁のコードの代わりに1つずつ使えます。印刷するか書き留めて、安全な場所に保管してください。
login-submit = ログイン
login-setup-link = 初回の方（管理者から受け取ったセットアップトークン）
logout = ログアウト

## First-time setup
setup-title = 初回設定
setup-token = セットアップトークン
setup-new-password = 新しいパスワード
setup-repeat-password = 新しいパスワード（確認）
setup-rules = パスワードは13文字以上（二要素認証を設定すると8文字以上）、4種類以上の文字を含み、256文字まで。長い文章のようなパスワードがおすすめです。
setup-mismatch = 2つのパスワードが一致しません。
setup-submit = パスワードを設定する
setup-done = パスワードを設定しました。ログインしてください。
change-password-title = パスワードの変更
change-password-current = 現在のパスワード
change-password-required = 最初に、管理者が設定した仮パスワードを変更してください。
change-password-submit = 変更する
change-password-done = パスワードを変更しました。他の端末のセッションは終了しました。

## Second factor
totp-title = 二要素認証（認証アプリ）
totp-on = 二要素認証は有効です。
totp-off = 二要素認証は設定されていません。スマートフォンを紛失した時のためにも設定をおすすめします。
totp-start = 設定を始める
totp-scan = 認証アプリでこのQRコードを読み取り、表示された6桁のコードを入力してください。
totp-secret = 手入力用のキー
totp-confirm = 確認する
totp-done = 二要素認証を設定しました。次回からログイン時に6桁のコードが必要です。
totp-required = ご利用の前に二要素認証を設定してください（管理者のポリシー）。

## Groups
groups-title = 担当グループ
groups-empty = まだ参加しているグループはありません。主治医からの招待を待つか、招待を承諾してください。
groups-unread = 未読 { $count }件
groups-community = 地域グループ
groups-archived = 終了
addressed-title = あなた宛ての質問
addressed-empty = あなた宛ての未回答の質問はありません。
invitations-title = 招待
invitation-from = { $name }（{ $organisation }）からの招待
invitation-accept = 承諾する
invitation-decline = 辞退する

## Timeline
timeline-back = 一覧へ
timeline-older = さらに前の投稿を読み込む
timeline-newer = 新しい投稿へ
timeline-start = ここがこのグループの最初です
timeline-empty = まだ投稿はありません。
timeline-removed = このグループのメンバーではなくなりました。
post-edited = 編集済み
post-deleted = この投稿は削除されました
post-history = 編集履歴
post-version = 第{ $version }版 { $at }
post-seen = 見ました
post-seen-by = 見ました { $count }人
post-seen-who = 見た人
post-seen-mine = 見ました済み
post-edit = 編集
post-save = 保存
post-cancel = キャンセル
post-pending = 送信待ち（電波が戻ると送信されます）
post-sending = 送信中…
post-reply-to = #{ $seq } への返信
kind-update = 経過報告
kind-treatment_question = 治療の質問（主治医へ）
kind-care_plan_question = ケアプランの質問（ケアマネジャーへ）
kind-care_policy = 診療方針
care-policy-legend = 診療方針（在宅医療情報連携加算の記録）
care-policy-next-visit = 次回訪問日
care-policy-changed = 治療方針を変更した
care-policy-changed-label = 方針の変更
care-policy-yes = あり
care-policy-no = なし
care-policy-summary = 変更の概要
care-policy-cautions = 留意事項
month-record-title = 今月の月次記録（在宅医療情報連携加算）
month-record-check = 主治医のグループをまとめて確認
month-record-summary = { $month }: { $groups } グループ中 { $complete } 件そろっています・連携する事業所 { $organisations }（加算には 5 以上）
month-record-incomplete = 不足あり（チーム画面で確認）

## Composing
compose-placeholder = 経過や気づいたことを書いてください（緊急の連絡は電話で）
compose-kind = 投稿の種類
compose-send = 送信
compose-draft-saved = 下書きは自動で保存されます
refusal-emergency-title = 緊急の連絡は電話でお願いします
refusal-emergency-body = この投稿は緊急の内容のように読めます（「{ $matched }」）。renkei は緊急連絡には使えません。
refusal-emergency-call = 主治医に電話する { $phone }
refusal-emergency-nophone = 主治医の電話番号は登録されていません。事業所の緊急連絡手順に従ってください。
refusal-emergency-override = 緊急ではありません。このまま送信する
refusal-community = 地域グループには個別の患者さんの情報を書けません。患者さんのグループに投稿してください。
refusal-generic = 送信できませんでした：{ $reason }
off-hours-title = 次の方は対応時間外です。すぐの返信は期待されません。
off-hours-contact = 連絡方法：{ $contact }

## My account
me-title = アカウント
me-profile = { $name }（{ $profession }・{ $organisation }）
availability-title = 対応時間（ケアマネタイム）
availability-hint = 時間外の投稿には、送信者に「すぐの返信は期待されない」と表示されます。
availability-add = 時間帯を追加
availability-remove = 削除
availability-start = 開始
availability-end = 終了
availability-contact = 希望する連絡方法
availability-save = 保存
availability-saved = 保存しました。
sessions-title = ログイン中の端末
sessions-current = この端末
sessions-revoke = ログアウトさせる
sessions-since = { $since } から（最終 { $seen }）
weekday-mon = 月
weekday-tue = 火
weekday-wed = 水
weekday-thu = 木
weekday-fri = 金
weekday-sat = 土
weekday-sun = 日

## Professions
profession-physician = 医師
profession-dentist = 歯科医師
profession-pharmacist = 薬剤師
profession-nurse = 看護師
profession-therapist = リハビリ職
profession-care_manager = ケアマネジャー
profession-care_worker = 介護職
profession-support_centre = 地域包括支援センター
profession-msw = MSW
profession-government = 行政
profession-other = その他

## Error codes (stable identifiers from the server)
error-malformed_request = 送信内容の形式が正しくありません。
error-validation_failed = 入力内容を確認してください。
error-unsupported_media_type = 送信内容の形式が正しくありません。
error-payload_too_large = 内容が長すぎます。
error-unauthenticated = ログインしてください。
error-invalid_credentials = ログインIDまたはパスワードが違います。
error-totp_required = 確認コードを入力してください。
error-totp_invalid = 確認コードが違うか、期限切れです。
error-totp_enrollment_required = 二要素認証を設定してください。
error-password_change_required = パスワードを変更してください。
error-password_too_weak = パスワードが規則を満たしていません。
error-setup_token_invalid = セットアップトークンが無効か期限切れです。管理者に新しいトークンを依頼してください。
error-account_disabled = このアカウントは無効になっています。
error-too_many_attempts = 試行回数が多すぎます。{ $seconds }秒後にもう一度お試しください。
error-forbidden = この操作は許可されていません。
error-not_found = 見つかりません。
error-method_not_allowed = この操作はできません。
error-conflict = 他の変更と競合しました。もう一度お試しください。
error-outside_consent_scope = 同意の範囲外です。
error-consent_required = 同意の記録が必要です。
error-already_member = すでにメンバーです。
error-invitation_expired = 招待の期限が切れています。
error-group_not_active = このグループは終了しているか、読み取り専用です。
error-rate_limited = 送信が多すぎます。少し待ってください。
error-emergency_use_prohibited = 緊急の連絡は電話でお願いします。
error-patient_info_in_community_group = 地域グループには個別の患者さんの情報を書けません。
error-no_care_manager_in_group = このグループにはケアマネジャーがいません。
error-unsupported_attachment_type = 添付できるのは JPEG・PNG・WebP の写真と PDF だけです。
error-attachment_unreadable = 画像を読み取れません（途中で切れているか、大きすぎます）。
error-attachments_not_allowed_in_community_group = 全体グループには添付できません。患者グループで共有してください。
error-too_many_uploads = アップロードが混み合っています。少し待つと自動で再送します。
error-unavailable = サーバーが一時的に利用できません。自動で再試行します。
error-internal = サーバーでエラーが起きました。入力した内容は残っています。
error-offline = 接続がありません。電波が戻ると送信されます。
error-reauthentication_required = 管理操作の前に、パスワードをもう一度入力してください。

## Fields and their problems (a refused form says what to fix)
field-login = ログインID
field-display_name = 氏名
field-kana = ふりがな
field-organisation = 所属
field-phone = 電話番号
field-label = グループ名
field-patient-full_name = 患者氏名
field-patient-kana = 患者ふりがな
field-patient-patient_number = 患者番号
field-notes = メモ
field-consenter-name = 同意者の氏名
field-consenter-relationship = 続柄
field-obtained_on = 同意日
field-scope = 同意の範囲
field-scope-organisation = 同意の範囲の事業所
field-user = 対象の方
field-anchor = アンカー
field-q = 検索語
problem-empty = { $field }を入力してください。
problem-too_short = { $field }が短すぎます。
problem-too_long = { $field }が長すぎます。
problem-control_characters = { $field }に使えない文字が含まれています。
problem-invalid_characters = { $field }に使えるのは半角英小文字・数字・「.」「_」「-」です（先頭は英数字）。
problem-login-too_short = ログインIDは3文字以上の半角英数字にしてください。
problem-login-taken = このログインIDはすでに使われています。別のIDにしてください。
problem-invalid_phone = 電話番号の形式が正しくありません。
problem-obtained_on-in_future = 同意日が未来の日付になっています。
problem-scope-empty = 同意の範囲を1つ以上選んでください（範囲なしは「同意の撤回」です）。
problem-entry_names_nothing = 同意の範囲に空の項目があります。
problem-unknown_user = 同意の範囲に登録されていない方が含まれています。
problem-user-not_a_physician = 引き継ぎ先は医師に限られます。
problem-user-not_an_active_member = 引き継ぎ先は、このグループのメンバーで同意の範囲内の医師に限られます。先に招待して参加してもらってください。
problem-user-disabled = この方のアカウントは停止されています。
problem-user-cannot_disable_self = 自分自身のアカウントは停止できません。
problem-not_seq_and_hash = アンカーは「番号 ハッシュ（64桁）」の形で入力してください。
problem-shorter_than_13 = パスワードは13文字以上にしてください。

## Re-authentication
reauth-title = パスワードの再入力
reauth-hint = 管理操作（アカウント・グループの変更、エクスポート）の前に、本人確認のためパスワードをもう一度入力してください。
reauth-submit = 確認して続ける
cancel = キャンセル

groups-new = 新しい患者グループ
timeline-team = チーム

admin-title = 管理コンソール
attach-camera = 写真を撮る
attach-file = ファイルを添付
attach-chosen = 添付するファイル
attach-remove = { $name } を外す
attach-too-large = { $name } は大きすぎます（{ $max } MB まで）
attach-too-many = 添付は 1 件の投稿に { $max } 個までです
attach-uploading = 添付ファイル { $done } / { $total } 送信済み
attach-open = { $name } を拡大して見る
attach-save = 保存
attach-close = 閉じる

## Notifications
notify-title = 通知
notify-hint = 通知には「renkei に新しい投稿が N 件あります」とだけ表示され、患者名・グループ名・投稿の内容・送信者は含まれません。あなた宛ての質問はすぐに、ほかの投稿はまとめてお知らせします。対応時間外には送られず、時間になったらまとめてお知らせします。緊急の連絡は電話で。
notify-push = プッシュ通知（登録した端末へ）
notify-email = メール
notify-email-address = メールアドレス
notify-email-unavailable = このサーバーではメール通知が設定されていません。
notify-digest = ほかの投稿をまとめて知らせる間隔
notify-every-minutes = { $n }分ごと
notify-every-hours = { $n }時間ごと
notify-save = 通知の設定を保存
notify-saved = 通知の設定を保存しました。
notify-devices = 通知を受け取る端末
notify-no-devices = まだ登録された端末はありません。
notify-device-name = この端末の名前（例: 事業所のスマホ）
notify-enable-here = この端末で通知を受け取る
notify-device-added = この端末を登録しました。
notify-remove = 解除
notify-this-device = この端末
notify-device-since = { $since } に登録
notify-device-sent = 最後の通知 { $sent }
notify-unsupported = このブラウザーはプッシュ通知に対応していません。iPhone では、共有メニューの「ホーム画面に追加」から開いたときに使えます。
notify-permission-denied = 通知が許可されませんでした。ブラウザーの設定で、このサイトの通知を許可してください。
notify-push-failed = この端末を通知先に登録できませんでした。電波のよい場所でもう一度お試しください。
field-email = メール通知
field-email_address = メールアドレス
field-digest_minutes = 通知の間隔
field-endpoint = 通知の送り先
field-device = 端末の名前
field-devices = 端末
problem-email-not_available = このサーバーではメール通知を使えません。
problem-email_address-required = メール通知にはメールアドレスが必要です。
problem-email_address-invalid = メールアドレスの形式が正しくありません。
problem-digest_minutes-out_of_range = 通知の間隔は5分から1日の間で選んでください。
problem-devices-too_many = 登録できる端末は10台までです。使っていない端末を解除してください。
problem-endpoint-push_service_not_allowed = このブラウザーの通知サービスは、このサーバーでは使えません。管理者にお問い合わせください。
