# renkei web client — English (when the browser prefers it). Every key here exists in ja.ftl too.
app-name = renkei
app-tagline = Care-team collaboration for patients at home

## Connection and status
status-online = Connected
status-offline = Offline — posts you write are sent when the signal returns
status-reconnecting = Reconnecting…
session-ended = Your session has ended. Please sign in again.
server-error = The server cannot be reached. Please try again later; what you typed is kept.
retry = Retry
loading = Loading…

## Sign-in
login-title = Sign in
login-login = Login
login-password = Password
login-totp = Verification code (6 digits)
login-totp-hint = Enter the 6-digit code your authenticator app shows.
login-use-recovery = Lost your phone? Use a recovery code
login-recovery = Recovery code
login-recovery-hint = Enter one of the recovery codes shown when you set up the second factor; each works once. Without any, ask your ICT desk to reset your second factor.
totp-recovery-title = Recovery codes (shown only now)
totp-recovery-hint = If your phone is lost, each of these signs you in once in place of the 6-digit code. Print or write them down and keep them safe.
login-submit = Sign in
login-setup-link = First time here (setup token from your administrator)
logout = Sign out

## First-time setup
setup-title = First-time setup
setup-token = Setup token
setup-new-password = New password
setup-repeat-password = New password (again)
setup-rules = At least 13 characters (8 once a second factor is set up), at least 4 different characters, at most 256. A long sentence makes a good password.
setup-mismatch = The two passwords differ.
setup-submit = Set my password
setup-done = Your password is set. Please sign in.
change-password-title = Change password
change-password-current = Current password
change-password-required = First, change the initial password your administrator set.
change-password-submit = Change
change-password-done = Password changed. Your sessions on other devices have ended.

## Second factor
totp-title = Second factor (authenticator app)
totp-on = The second factor is on.
totp-off = No second factor yet. Setting one up protects you if your phone is lost.
totp-start = Set it up
totp-scan = Scan this QR code with your authenticator app, then enter the 6-digit code it shows.
totp-secret = Key for manual entry
totp-confirm = Confirm
totp-done = Second factor on. From now on, signing in asks for the 6-digit code.
totp-required = Please set up a second factor before going on (administrator's policy).

## Groups
groups-title = My groups
groups-empty = You are not in any group yet. Wait for an invitation from the attending physician, or accept one.
groups-unread = { $count } unread
groups-community = Community group
groups-archived = Closed
addressed-title = Questions for you
addressed-empty = No open questions addressed to you.
invitations-title = Invitations
invitation-from = Invited by { $name } ({ $organisation })
invitation-accept = Accept
invitation-decline = Decline

## Timeline
timeline-back = Groups
timeline-older = Load earlier posts
timeline-newer = Later posts
timeline-start = This is the start of the group
timeline-empty = No posts yet.
timeline-removed = You are no longer a member of this group.
post-edited = edited
post-deleted = This post was deleted
post-history = Edit history
post-version = Version { $version }, { $at }
post-seen = Seen
post-seen-by = Seen by { $count }
post-seen-who = Who has seen it
post-seen-mine = Seen ✓
post-edit = Edit
post-save = Save
post-cancel = Cancel
post-pending = Waiting to send (sent when the signal returns)
post-sending = Sending…
post-reply-to = Reply to #{ $seq }
kind-update = Update
kind-treatment_question = Treatment question (to the physician)
kind-care_plan_question = Care-plan question (to the care manager)
kind-care_policy = Care policy
care-policy-legend = Care policy (for the monthly home-care record)
care-policy-next-visit = Next visit
care-policy-changed = The treatment policy changed
care-policy-changed-label = Policy changed
care-policy-yes = Yes
care-policy-no = No
care-policy-summary = What changed
care-policy-cautions = Cautions for care
month-record-title = This month's home-care records (在宅医療情報連携加算)
month-record-check = Check all the groups I attend
month-record-summary = { $month }: { $complete } of { $groups } groups complete · { $organisations } linked organisations (the 加算 asks for 5)
month-record-incomplete = incomplete (see its team screen)

## Composing
compose-placeholder = Write an update (emergencies go by telephone)
compose-kind = Kind of post
compose-send = Send
compose-draft-saved = Drafts are saved as you type
refusal-emergency-title = Emergencies go by telephone
refusal-emergency-body = This post reads as an emergency (“{ $matched }”). renkei must not be used for emergencies.
refusal-emergency-call = Call the attending physician { $phone }
refusal-emergency-nophone = The attending physician has no phone number on record. Follow your office's emergency procedure.
refusal-emergency-override = It is not an emergency: send it
refusal-community = A community group cannot hold information about an individual patient. Post it in the patient's group.
refusal-generic = Not sent: { $reason }
off-hours-title = These members are off hours; no immediate reply is expected.
off-hours-contact = Contact: { $contact }

## My account
me-title = Account
me-profile = { $name } ({ $profession }, { $organisation })
availability-title = Availability hours
availability-hint = Whoever posts outside these hours is told that no immediate reply is expected.
availability-add = Add hours
availability-remove = Remove
availability-start = From
availability-end = To
availability-contact = Preferred contact
availability-save = Save
availability-saved = Saved.
sessions-title = Signed-in devices
sessions-current = This device
sessions-revoke = Sign it out
sessions-since = since { $since } (last { $seen })
weekday-mon = Mon
weekday-tue = Tue
weekday-wed = Wed
weekday-thu = Thu
weekday-fri = Fri
weekday-sat = Sat
weekday-sun = Sun

## Professions
profession-physician = Physician
profession-dentist = Dentist
profession-pharmacist = Pharmacist
profession-nurse = Nurse
profession-therapist = Therapist
profession-care_manager = Care manager
profession-care_worker = Care worker
profession-support_centre = Support centre
profession-msw = MSW
profession-government = Government
profession-other = Other

## Error codes (stable identifiers from the server)
error-malformed_request = The request was not in the expected form.
error-validation_failed = Please check what you entered.
error-unsupported_media_type = The request was not in the expected form.
error-payload_too_large = That is too long.
error-unauthenticated = Please sign in.
error-invalid_credentials = Login or password is wrong.
error-totp_required = Enter your verification code.
error-totp_invalid = The verification code is wrong or expired.
error-totp_enrollment_required = Please set up a second factor.
error-password_change_required = Please change your password.
error-password_too_weak = The password does not meet the rules.
error-setup_token_invalid = The setup token is invalid or expired. Ask your administrator for a new one.
error-account_disabled = This account is disabled.
error-too_many_attempts = Too many attempts. Try again in { $seconds } seconds.
error-forbidden = You are not allowed to do this.
error-not_found = Not found.
error-method_not_allowed = This cannot be done.
error-conflict = This conflicted with another change. Please try again.
error-outside_consent_scope = Outside the consent in force.
error-consent_required = A consent must be recorded first.
error-already_member = Already a member.
error-invitation_expired = The invitation has expired.
error-group_not_active = This group is closed or read-only.
error-rate_limited = Too many messages; please wait a moment.
error-emergency_use_prohibited = Emergencies go by telephone.
error-patient_info_in_community_group = A community group cannot hold information about an individual patient.
error-no_care_manager_in_group = This group has no care manager.
error-unsupported_attachment_type = Only JPEG, PNG and WebP photos and PDF documents can be attached.
error-attachment_unreadable = The image cannot be read (cut off, corrupt or too large).
error-attachments_not_allowed_in_community_group = Community groups take no attachments; share the file in the patient's own group.
error-too_many_uploads = The server is busy with other uploads; it will be sent again shortly.
error-unavailable = The server is briefly unavailable; retrying by itself.
error-internal = The server had an error. What you typed is kept.
error-offline = No connection. It will be sent when the signal returns.
error-reauthentication_required = Enter your password again before an administrator's action.

## Fields and their problems (a refused form says what to fix)
field-login = Login
field-display_name = Name
field-kana = Kana reading
field-organisation = Organisation
field-phone = Phone
field-label = Group name
field-patient-full_name = Patient's name
field-patient-kana = Patient's kana
field-patient-patient_number = Patient number
field-notes = Notes
field-consenter-name = Name of the person consenting
field-consenter-relationship = Relationship
field-obtained_on = Date of consent
field-scope = Consent scope
field-scope-organisation = Organisation in the scope
field-user = Person
field-anchor = Anchor
field-q = Search words
problem-empty = { $field } is required.
problem-too_short = { $field } is too short.
problem-too_long = { $field } is too long.
problem-control_characters = { $field } contains characters that cannot be used.
problem-invalid_characters = { $field } may use lower-case letters, digits, ".", "_" and "-" (starting with a letter or digit).
problem-login-too_short = A login needs at least 3 letters or digits.
problem-login-taken = This login is already taken; choose another.
problem-invalid_phone = The phone number is not valid.
problem-obtained_on-in_future = The date of consent is in the future.
problem-scope-empty = Choose at least one entry for the scope (no scope is a withdrawal).
problem-entry_names_nothing = The scope has an empty entry.
problem-unknown_user = The scope names someone who is not registered.
problem-user-not_a_physician = A group is handed over to a physician only.
problem-user-not_an_active_member = A group is handed over to a physician who is a member of it and inside the consent. Invite them first.
problem-user-disabled = This person's account is disabled.
problem-user-cannot_disable_self = You cannot disable your own account.
problem-not_seq_and_hash = Enter the anchor as "number hash (64 hex digits)".
problem-shorter_than_13 = The password needs at least 13 characters.

## Re-authentication
reauth-title = Enter your password again
reauth-hint = Before an administrator's action (changing accounts or groups, exports), enter your password again to confirm it is you.
reauth-submit = Confirm and continue
cancel = Cancel

groups-new = New patient group
timeline-team = Team

admin-title = Admin console
attach-camera = Take a photo
attach-file = Attach a file
attach-chosen = Files to attach
attach-remove = Remove { $name }
attach-too-large = { $name } is too large (at most { $max } MB)
attach-too-many = A post shares at most { $max } files
attach-uploading = Files sent: { $done } of { $total }
attach-open = View { $name } full-screen
attach-save = Save
attach-close = Close

## Notifications
notify-title = Notifications
notify-hint = A notification says only "N new posts in renkei": never a patient's name, a group, what a post says or who wrote it. Questions addressed to you come at once, other posts in a digest. Nothing is sent outside your availability hours; what waited comes when they begin. Emergencies go by phone.
notify-push = Push notifications (to my devices)
notify-email = E-mail
notify-email-address = E-mail address
notify-email-unavailable = This server has no e-mail notifications configured.
notify-digest = Digest of other posts at most every
notify-every-minutes = { $n } minutes
notify-every-hours = { $n } hours
notify-save = Save notification settings
notify-saved = Notification settings saved.
notify-devices = Devices that receive notifications
notify-no-devices = No device yet.
notify-device-name = Name of this device (e.g. office phone)
notify-enable-here = Receive notifications on this device
notify-device-added = This device is registered.
notify-remove = Remove
notify-this-device = This device
notify-device-since = Registered { $since }
notify-device-sent = last notified { $sent }
notify-unsupported = This browser cannot receive push notifications. On an iPhone, open renkei from the Home Screen ("Add to Home Screen" in the share menu).
notify-permission-denied = Notifications were not allowed. Allow them for this site in the browser's settings.
notify-push-failed = This device could not be registered for notifications. Try again where the signal is good.
field-email = E-mail notifications
field-email_address = E-mail address
field-digest_minutes = Digest interval
field-endpoint = Push service
field-device = Device name
field-devices = Devices
problem-email-not_available = This server cannot send e-mail notifications.
problem-email_address-required = E-mail notifications need an address.
problem-email_address-invalid = That e-mail address does not look right.
problem-digest_minutes-out_of_range = Choose an interval between 5 minutes and a day.
problem-devices-too_many = At most 10 devices: remove one you no longer use.
problem-endpoint-push_service_not_allowed = This browser's push service is not allowed on this server; ask the administrator.
