from django.urls import include, path

from generations import views

urlpatterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/invitation/<str:token>/", views.accept_invitation, name="accept-invitation"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/password_reset/", views.QueuedPasswordResetView.as_view(), name="password_reset"),
    path("accounts/reset/<uidb64>/<token>/", views.LockoutLiftingPasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", views.dashboard, name="dashboard"),
    path("balance/", views.balance_panel, name="balance"),
    path("estimate/", views.estimate, name="estimate"),
    path("settings/key/", views.api_key, name="api-key"),
    path("settings/account/", views.account, name="account"),
    path("history/", views.history, name="history"),
    path("activity/", views.activity, name="activity"),
    path("usage/", views.usage, name="usage"),
    path("usage/records.csv", views.usage_csv, name="usage-csv"),
    path("generations/text/", views.create_text, name="create-text"),
    path("generations/image/", views.create_image, name="create-image"),
    path("generations/<uuid:code>/", views.detail, name="detail"),
    path("generations/<uuid:code>/delete/", views.delete, name="delete"),
    path("generations/<uuid:code>/privacy/", views.privacy, name="privacy"),
    path("generations/<uuid:code>/card/", views.card, name="card"),
    path("generations/<uuid:code>/retry/", views.retry, name="retry"),
    path("generations/<uuid:code>/cancel/", views.cancel, name="cancel"),
    path("generations/<uuid:code>/video.mp4", views.video, name="video"),
    path("generations/<uuid:code>/source", views.source_image, name="source-image"),
    path("generations/<uuid:code>/poster.jpg", views.poster, name="poster"),
    path("webhooks/pixverse/", views.pixverse_webhook, name="pixverse-webhook"),
]
