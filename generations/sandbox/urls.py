from django.urls import path

from generations.sandbox import views

app_name = "sandbox"

urlpatterns = [
    path("openapi/v2/account/balance", views.balance, name="balance"),
    path("openapi/v2/video/text/generate", views.text_generate, name="text-generate"),
    path("openapi/v2/image/upload", views.upload_image, name="image-upload"),
    path("openapi/v2/video/img/generate", views.img_generate, name="img-generate"),
    path("openapi/v2/video/status", views.video_status, name="video-status"),
    path("openapi/v2/video/result/<str:video_id>", views.video_result, name="video-result"),
    path("openapi/v2/video/transition/generate", views.transition_generate,
         name="transition-generate"),
    path("openapi/v2/video/extend/generate", views.extend_generate, name="extend-generate"),
    path("openapi/v2/video/sound_effect/generate", views.sound_effect_generate,
         name="sound-effect-generate"),
    path("openapi/v2/video/lip_sync/generate", views.lip_sync_generate, name="lip-sync-generate"),
    path("openapi/v2/video/fusion/generate", views.fusion_generate, name="fusion-generate"),
    path("openapi/v2/media/upload", views.upload_media, name="media-upload"),
    path("openapi/v2/video/lip_sync/tts_list", views.tts_list, name="tts-list"),
    path("openapi/v2/video/tts_speaker", views.tts_speaker, name="tts-speaker"),
    path("openapi/v2/video/effects/templates/list", views.effect_templates,
         name="effect-templates"),
    path("files/videos/<int:video_id>.mp4", views.video_file, name="video-file"),
    path("files/images/<int:img_id>", views.image_file, name="image-file"),
    path("files/media/<int:media_id>", views.media_file, name="media-file"),
]
