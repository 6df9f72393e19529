// media.proto: the sendmedia Logicsvr — images and video. It is its own
// binary, apart from send (text and voice) and sync, so that heavy media
// traffic (uploads of up to 100 MiB, image decoding, downloads) cannot take
// text sending down with it: it has its own processes, CPU, memory,
// concurrency limits and disk, and when it is overloaded or crashes, text
// and sync go on.
//
// Every CGI here needs a session token (account.proto); the user a call acts
// for is the token's.
//
// # Upload
//
// A client uploads a file before it sends it, in three steps:
//
//  1. StartUpload declares the file: its MIME type, its size and the
//     SHA-256 of its bytes, and the chunk size it will send in. The answer
//     names the upload (upload_id).
//  2. UploadChunk sends the bytes chunk by chunk: chunk i covers bytes
//     [i*chunk_size, min((i+1)*chunk_size, size)) and is sent whole, in any
//     order, each once (sending a stored chunk again with the same bytes is
//     a harmless retry). A client whose connection dropped asks GetUpload
//     which ranges are stored and sends only the rest: uploads are
//     resumable for upload_ttl (the service's config, 24h by default) after
//     their last chunk, after which they are deleted.
//  3. CompleteUpload checks the bytes (every chunk stored; the SHA-256
//     matches; the content is a well-formed file of the declared type),
//     processes them (below) and stores the result as media, whose id
//     (media_id, the upload id) the sends and downloads name. It is
//     idempotent: completing a completed upload answers the same media.
//
// Nothing is served before CompleteUpload has answered: there are no
// partial media.
//
// # Processing
//
// Images (JPEG, PNG, GIF, WebP) are decoded in full: the header gives the
// dimensions, which may not exceed MEDIA_LIMIT_MAX_IMAGE_PIXELS (so a tiny
// file declaring a gigantic image is refused before it is decoded), and the
// decoded pixels a thumbnail (JPEG, at most MEDIA_LIMIT_THUMB_SIDE pixels on
// its long side, turned upright by the EXIF orientation). What receivers
// download is the file with the metadata that can locate or identify the
// sender removed; the pixels are untouched (no re-encoding):
//
//   - JPEG: the EXIF segment is replaced by a minimal one holding only the
//     orientation tag, so the image still displays upright; GPS, camera
//     make, model and serial numbers, capture times and the embedded EXIF
//     thumbnail are gone, and so are XMP, IPTC/Photoshop (APP13) segments
//     and comments. Kept: JFIF (APP0), the ICC colour profile (APP2),
//     Adobe (APP14, needed to decode CMYK), and the image data.
//   - PNG: eXIf and the text chunks (tEXt, zTXt, iTXt, which hold XMP)
//     and tIME are removed; every other chunk is kept.
//   - WebP: the EXIF and XMP chunks are removed (and the VP8X flags and
//     RIFF size fixed); ICC, animation and alpha are kept.
//   - GIF: comment extensions and XMP application extensions are removed;
//     the NETSCAPE looping extension and every frame are kept.
//
// Video (MP4 and QuickTime, WebM and Matroska) is not transcoded and not
// decoded: the container is checked (its header and its top-level
// structure), the duration read where the container states it (MP4: the
// movie header, or the fragment header of a fragmented file; WebM: the
// segment's Duration; otherwise duration_ms is 0, unknown) and the
// dimensions from the video track header. MP4 user data and metadata boxes
// (udta, meta: where phones record the location, ©xyz) are overwritten in
// place with free boxes of the same size, so no sample offset moves. A video
// has no server-made thumbnail: the sender uploads a cover image and names it
// in SendVideo.
//
// # Storage and deduplication
//
// Processed files and thumbnails are stored once per content (by their
// SHA-256): sending the same photo twice, or forwarding it (SendImage with
// a media_id one received), stores no second copy. Media expire
// media_retention (config, 30 days by default) after their upload; then,
// or after DeleteMedia, their bytes are reclaimed once no other media holds
// the same content.
//
// # Download
//
// Media are downloaded over plain HTTP GET (or HEAD) with Range requests
// (RFC 9110), not through a CGI:
//
//	GET /cgi-bin/media/download/<media_id>    the processed file
//	GET /cgi-bin/media/thumb/<media_id>       an image's thumbnail (a video message
//	                                          names its cover image's in thumb_media_id)
//	Authorization: Bearer <token>
//	Range: bytes=0-1048575                    optional; one or more ranges
//
// Only the participants of a conversation the media was sent in may
// download it: its uploader and everyone it was sent to (the receivers of
// SendImage and SendVideo, and, once groups exist, the members of a group
// it was sent to); a video's cover is sent along with it. The answer is 200 (or 206 with Content-Range for a
// range) with the media's MIME type, Content-Length, Accept-Ranges: bytes
// and an ETag (the quoted SHA-256 of the bytes, which If-Range and
// If-None-Match may name). Errors: 401 without a valid token, 403 for a
// user who is not a participant, 404 for an unknown or expired media (or
// the thumbnail of a video), 429 when too many downloads run, each with
// the CGIs' JSON body {"code": ..., "message": ...}; and 416 for a range
// that starts past the end, with Content-Range: bytes */<size>.
//
// # Errors
//
// Beyond account.proto's (invalid_argument for a request that breaks a
// documented limit, unavailable, deadline_exceeded):
//
//   - invalid_argument: a chunk at an offset that is not a multiple of
//     chunk_size, or whose length is not its chunk's (chunks cannot overlap);
//     at CompleteUpload, a SHA-256 that does not match the bytes, content
//     that is not of the declared type (a PNG header on garbage), an image
//     over the pixel limit (a decompression bomb). After a mismatch or bad
//     content the upload is deleted: start again.
//   - out_of_range: a chunk that starts at or ends past the declared size.
//   - failed_precondition: CompleteUpload with chunks missing (the message
//     names the missing ranges); a chunk sent again with different bytes; a
//     chunk of an upload already completed; sending media of the wrong kind
//     (an image with SendVideo).
//   - not_found: an unknown or expired upload or media; another user's
//     upload.
//   - permission_denied: sending or deleting media the caller may not
//     (another user's upload it was never sent).
//   - resource_exhausted: more than MEDIA_LIMIT_MAX_OPEN_UPLOADS uploads
//     in progress for one user, or the service is at its concurrency limit.

// Code generated by protoc-gen-go. DO NOT EDIT.
// versions:
// 	protoc-gen-go v1.36.12
// 	protoc        (unknown)
// source: im/media.proto

package im

import (
	_ "github.com/svrkit/svrkit/idl/svrkit"
	protoreflect "google.golang.org/protobuf/reflect/protoreflect"
	protoimpl "google.golang.org/protobuf/runtime/protoimpl"
	reflect "reflect"
	sync "sync"
	unsafe "unsafe"
)

const (
	// Verify that this generated code is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(20 - protoimpl.MinVersion)
	// Verify that runtime/protoimpl is sufficiently up-to-date.
	_ = protoimpl.EnforceVersion(protoimpl.MaxVersion - 20)
)

// MediaLimit holds the limits of this file as numbers, so that every
// language's generated code has them (in Go: im.MediaLimit_MEDIA_LIMIT_...).
type MediaLimit int32

const (
	MediaLimit_MEDIA_LIMIT_UNSPECIFIED MediaLimit = 0
	// MAX_IMAGE_BYTES bounds an image upload: 10 MiB.
	MediaLimit_MEDIA_LIMIT_MAX_IMAGE_BYTES MediaLimit = 10485760
	// MAX_VIDEO_BYTES bounds a video upload: 100 MiB.
	MediaLimit_MEDIA_LIMIT_MAX_VIDEO_BYTES MediaLimit = 104857600
	// MIN_CHUNK_BYTES and MAX_CHUNK_BYTES bound chunk_size: 64 KiB to 2 MiB.
	MediaLimit_MEDIA_LIMIT_MIN_CHUNK_BYTES MediaLimit = 65536
	MediaLimit_MEDIA_LIMIT_MAX_CHUNK_BYTES MediaLimit = 2097152
	// MAX_IMAGE_PIXELS bounds width × height of an image: 50 megapixels.
	MediaLimit_MEDIA_LIMIT_MAX_IMAGE_PIXELS MediaLimit = 50000000
	// MAX_IMAGE_SIDE bounds its width and its height: 16384 pixels.
	MediaLimit_MEDIA_LIMIT_MAX_IMAGE_SIDE MediaLimit = 16384
	// THUMB_SIDE is a thumbnail's longest side: 320 pixels.
	MediaLimit_MEDIA_LIMIT_THUMB_SIDE MediaLimit = 320
	// MAX_OPEN_UPLOADS bounds one user's uploads in progress: 16.
	MediaLimit_MEDIA_LIMIT_MAX_OPEN_UPLOADS MediaLimit = 16
)

// Enum value maps for MediaLimit.
var (
	MediaLimit_name = map[int32]string{
		0:         "MEDIA_LIMIT_UNSPECIFIED",
		10485760:  "MEDIA_LIMIT_MAX_IMAGE_BYTES",
		104857600: "MEDIA_LIMIT_MAX_VIDEO_BYTES",
		65536:     "MEDIA_LIMIT_MIN_CHUNK_BYTES",
		2097152:   "MEDIA_LIMIT_MAX_CHUNK_BYTES",
		50000000:  "MEDIA_LIMIT_MAX_IMAGE_PIXELS",
		16384:     "MEDIA_LIMIT_MAX_IMAGE_SIDE",
		320:       "MEDIA_LIMIT_THUMB_SIDE",
		16:        "MEDIA_LIMIT_MAX_OPEN_UPLOADS",
	}
	MediaLimit_value = map[string]int32{
		"MEDIA_LIMIT_UNSPECIFIED":      0,
		"MEDIA_LIMIT_MAX_IMAGE_BYTES":  10485760,
		"MEDIA_LIMIT_MAX_VIDEO_BYTES":  104857600,
		"MEDIA_LIMIT_MIN_CHUNK_BYTES":  65536,
		"MEDIA_LIMIT_MAX_CHUNK_BYTES":  2097152,
		"MEDIA_LIMIT_MAX_IMAGE_PIXELS": 50000000,
		"MEDIA_LIMIT_MAX_IMAGE_SIDE":   16384,
		"MEDIA_LIMIT_THUMB_SIDE":       320,
		"MEDIA_LIMIT_MAX_OPEN_UPLOADS": 16,
	}
)

func (x MediaLimit) Enum() *MediaLimit {
	p := new(MediaLimit)
	*p = x
	return p
}

func (x MediaLimit) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (MediaLimit) Descriptor() protoreflect.EnumDescriptor {
	return file_im_media_proto_enumTypes[0].Descriptor()
}

func (MediaLimit) Type() protoreflect.EnumType {
	return &file_im_media_proto_enumTypes[0]
}

func (x MediaLimit) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use MediaLimit.Descriptor instead.
func (MediaLimit) EnumDescriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{0}
}

type MediaKind int32

const (
	MediaKind_MEDIA_KIND_UNSPECIFIED MediaKind = 0
	MediaKind_MEDIA_KIND_IMAGE       MediaKind = 1
	MediaKind_MEDIA_KIND_VIDEO       MediaKind = 2
)

// Enum value maps for MediaKind.
var (
	MediaKind_name = map[int32]string{
		0: "MEDIA_KIND_UNSPECIFIED",
		1: "MEDIA_KIND_IMAGE",
		2: "MEDIA_KIND_VIDEO",
	}
	MediaKind_value = map[string]int32{
		"MEDIA_KIND_UNSPECIFIED": 0,
		"MEDIA_KIND_IMAGE":       1,
		"MEDIA_KIND_VIDEO":       2,
	}
)

func (x MediaKind) Enum() *MediaKind {
	p := new(MediaKind)
	*p = x
	return p
}

func (x MediaKind) String() string {
	return protoimpl.X.EnumStringOf(x.Descriptor(), protoreflect.EnumNumber(x))
}

func (MediaKind) Descriptor() protoreflect.EnumDescriptor {
	return file_im_media_proto_enumTypes[1].Descriptor()
}

func (MediaKind) Type() protoreflect.EnumType {
	return &file_im_media_proto_enumTypes[1]
}

func (x MediaKind) Number() protoreflect.EnumNumber {
	return protoreflect.EnumNumber(x)
}

// Deprecated: Use MediaKind.Descriptor instead.
func (MediaKind) EnumDescriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{1}
}

type StartUploadRequest struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// mime_type is the file's type: image/jpeg, image/png, image/gif,
	// image/webp, video/mp4, video/quicktime, video/webm or
	// video/x-matroska. CompleteUpload checks the bytes are of this type.
	MimeType string `protobuf:"bytes,1,opt,name=mime_type,json=mimeType,proto3" json:"mime_type,omitempty"`
	// size is the file's size in bytes: 1 to MAX_IMAGE_BYTES for an image,
	// MAX_VIDEO_BYTES for a video.
	Size int64 `protobuf:"varint,2,opt,name=size,proto3" json:"size,omitempty"`
	// sha256 is the SHA-256 of the file's bytes (32 bytes).
	Sha256 []byte `protobuf:"bytes,3,opt,name=sha256,proto3" json:"sha256,omitempty"`
	// chunk_size is the size of every chunk but the last, from
	// MIN_CHUNK_BYTES to MAX_CHUNK_BYTES; 0 means 1 MiB.
	ChunkSize     uint32 `protobuf:"varint,4,opt,name=chunk_size,json=chunkSize,proto3" json:"chunk_size,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *StartUploadRequest) Reset() {
	*x = StartUploadRequest{}
	mi := &file_im_media_proto_msgTypes[0]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *StartUploadRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*StartUploadRequest) ProtoMessage() {}

func (x *StartUploadRequest) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[0]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use StartUploadRequest.ProtoReflect.Descriptor instead.
func (*StartUploadRequest) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{0}
}

func (x *StartUploadRequest) GetMimeType() string {
	if x != nil {
		return x.MimeType
	}
	return ""
}

func (x *StartUploadRequest) GetSize() int64 {
	if x != nil {
		return x.Size
	}
	return 0
}

func (x *StartUploadRequest) GetSha256() []byte {
	if x != nil {
		return x.Sha256
	}
	return nil
}

func (x *StartUploadRequest) GetChunkSize() uint32 {
	if x != nil {
		return x.ChunkSize
	}
	return 0
}

// UploadState is what the server has stored of an upload.
type UploadState struct {
	state     protoimpl.MessageState `protogen:"open.v1"`
	UploadId  string                 `protobuf:"bytes,1,opt,name=upload_id,json=uploadId,proto3" json:"upload_id,omitempty"`
	MimeType  string                 `protobuf:"bytes,2,opt,name=mime_type,json=mimeType,proto3" json:"mime_type,omitempty"`
	Size      int64                  `protobuf:"varint,3,opt,name=size,proto3" json:"size,omitempty"`
	ChunkSize uint32                 `protobuf:"varint,4,opt,name=chunk_size,json=chunkSize,proto3" json:"chunk_size,omitempty"`
	// stored are the byte ranges stored, in order, adjacent chunks merged.
	Stored []*ByteRange `protobuf:"bytes,5,rep,name=stored,proto3" json:"stored,omitempty"`
	// stored_bytes is the sum of the stored ranges' lengths.
	StoredBytes int64 `protobuf:"varint,6,opt,name=stored_bytes,json=storedBytes,proto3" json:"stored_bytes,omitempty"`
	// expires_unix_ms is when the upload is deleted unless another chunk
	// arrives (each chunk moves it to upload_ttl from then).
	ExpiresUnixMs int64 `protobuf:"varint,7,opt,name=expires_unix_ms,json=expiresUnixMs,proto3" json:"expires_unix_ms,omitempty"`
	// completed is set once CompleteUpload has answered: the upload is media
	// now, with media_id upload_id.
	Completed     bool `protobuf:"varint,8,opt,name=completed,proto3" json:"completed,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *UploadState) Reset() {
	*x = UploadState{}
	mi := &file_im_media_proto_msgTypes[1]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *UploadState) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*UploadState) ProtoMessage() {}

func (x *UploadState) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[1]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use UploadState.ProtoReflect.Descriptor instead.
func (*UploadState) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{1}
}

func (x *UploadState) GetUploadId() string {
	if x != nil {
		return x.UploadId
	}
	return ""
}

func (x *UploadState) GetMimeType() string {
	if x != nil {
		return x.MimeType
	}
	return ""
}

func (x *UploadState) GetSize() int64 {
	if x != nil {
		return x.Size
	}
	return 0
}

func (x *UploadState) GetChunkSize() uint32 {
	if x != nil {
		return x.ChunkSize
	}
	return 0
}

func (x *UploadState) GetStored() []*ByteRange {
	if x != nil {
		return x.Stored
	}
	return nil
}

func (x *UploadState) GetStoredBytes() int64 {
	if x != nil {
		return x.StoredBytes
	}
	return 0
}

func (x *UploadState) GetExpiresUnixMs() int64 {
	if x != nil {
		return x.ExpiresUnixMs
	}
	return 0
}

func (x *UploadState) GetCompleted() bool {
	if x != nil {
		return x.Completed
	}
	return false
}

// ByteRange is the bytes [offset, offset+length).
type ByteRange struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	Offset        int64                  `protobuf:"varint,1,opt,name=offset,proto3" json:"offset,omitempty"`
	Length        int64                  `protobuf:"varint,2,opt,name=length,proto3" json:"length,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *ByteRange) Reset() {
	*x = ByteRange{}
	mi := &file_im_media_proto_msgTypes[2]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *ByteRange) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*ByteRange) ProtoMessage() {}

func (x *ByteRange) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[2]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use ByteRange.ProtoReflect.Descriptor instead.
func (*ByteRange) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{2}
}

func (x *ByteRange) GetOffset() int64 {
	if x != nil {
		return x.Offset
	}
	return 0
}

func (x *ByteRange) GetLength() int64 {
	if x != nil {
		return x.Length
	}
	return 0
}

type UploadChunkRequest struct {
	state    protoimpl.MessageState `protogen:"open.v1"`
	UploadId string                 `protobuf:"bytes,1,opt,name=upload_id,json=uploadId,proto3" json:"upload_id,omitempty"`
	// offset is the chunk's first byte: a multiple of chunk_size.
	Offset int64 `protobuf:"varint,2,opt,name=offset,proto3" json:"offset,omitempty"`
	// data is the whole chunk: chunk_size bytes, or what remains of the file
	// for the last one.
	Data          []byte `protobuf:"bytes,3,opt,name=data,proto3" json:"data,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *UploadChunkRequest) Reset() {
	*x = UploadChunkRequest{}
	mi := &file_im_media_proto_msgTypes[3]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *UploadChunkRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*UploadChunkRequest) ProtoMessage() {}

func (x *UploadChunkRequest) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[3]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use UploadChunkRequest.ProtoReflect.Descriptor instead.
func (*UploadChunkRequest) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{3}
}

func (x *UploadChunkRequest) GetUploadId() string {
	if x != nil {
		return x.UploadId
	}
	return ""
}

func (x *UploadChunkRequest) GetOffset() int64 {
	if x != nil {
		return x.Offset
	}
	return 0
}

func (x *UploadChunkRequest) GetData() []byte {
	if x != nil {
		return x.Data
	}
	return nil
}

type GetUploadRequest struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	UploadId      string                 `protobuf:"bytes,1,opt,name=upload_id,json=uploadId,proto3" json:"upload_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *GetUploadRequest) Reset() {
	*x = GetUploadRequest{}
	mi := &file_im_media_proto_msgTypes[4]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *GetUploadRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*GetUploadRequest) ProtoMessage() {}

func (x *GetUploadRequest) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[4]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use GetUploadRequest.ProtoReflect.Descriptor instead.
func (*GetUploadRequest) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{4}
}

func (x *GetUploadRequest) GetUploadId() string {
	if x != nil {
		return x.UploadId
	}
	return ""
}

type CompleteUploadRequest struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	UploadId      string                 `protobuf:"bytes,1,opt,name=upload_id,json=uploadId,proto3" json:"upload_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *CompleteUploadRequest) Reset() {
	*x = CompleteUploadRequest{}
	mi := &file_im_media_proto_msgTypes[5]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *CompleteUploadRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*CompleteUploadRequest) ProtoMessage() {}

func (x *CompleteUploadRequest) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[5]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use CompleteUploadRequest.ProtoReflect.Descriptor instead.
func (*CompleteUploadRequest) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{5}
}

func (x *CompleteUploadRequest) GetUploadId() string {
	if x != nil {
		return x.UploadId
	}
	return ""
}

// MediaInfo describes stored media, as the uploader sees it.
type MediaInfo struct {
	state   protoimpl.MessageState `protogen:"open.v1"`
	MediaId string                 `protobuf:"bytes,1,opt,name=media_id,json=mediaId,proto3" json:"media_id,omitempty"`
	Kind    MediaKind              `protobuf:"varint,2,opt,name=kind,proto3,enum=im.MediaKind" json:"kind,omitempty"`
	// mime_type is the type of what is served (the declared one).
	MimeType string `protobuf:"bytes,3,opt,name=mime_type,json=mimeType,proto3" json:"mime_type,omitempty"`
	// size and sha256 are those of the file served, after processing.
	Size   int64  `protobuf:"varint,4,opt,name=size,proto3" json:"size,omitempty"`
	Sha256 []byte `protobuf:"bytes,5,opt,name=sha256,proto3" json:"sha256,omitempty"`
	// width and height in pixels (0 when the container does not say).
	Width  uint32 `protobuf:"varint,6,opt,name=width,proto3" json:"width,omitempty"`
	Height uint32 `protobuf:"varint,7,opt,name=height,proto3" json:"height,omitempty"`
	// duration_ms of a video; 0 when the container does not state it.
	DurationMs uint32 `protobuf:"varint,8,opt,name=duration_ms,json=durationMs,proto3" json:"duration_ms,omitempty"`
	// thumb_* describe an image's thumbnail (a JPEG).
	ThumbWidth  uint32 `protobuf:"varint,9,opt,name=thumb_width,json=thumbWidth,proto3" json:"thumb_width,omitempty"`
	ThumbHeight uint32 `protobuf:"varint,10,opt,name=thumb_height,json=thumbHeight,proto3" json:"thumb_height,omitempty"`
	ThumbSize   int64  `protobuf:"varint,11,opt,name=thumb_size,json=thumbSize,proto3" json:"thumb_size,omitempty"`
	// stripped names what processing removed, e.g. ["exif", "xmp"]; empty
	// when there was nothing to remove.
	Stripped      []string `protobuf:"bytes,12,rep,name=stripped,proto3" json:"stripped,omitempty"`
	ExpiresUnixMs int64    `protobuf:"varint,13,opt,name=expires_unix_ms,json=expiresUnixMs,proto3" json:"expires_unix_ms,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *MediaInfo) Reset() {
	*x = MediaInfo{}
	mi := &file_im_media_proto_msgTypes[6]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *MediaInfo) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*MediaInfo) ProtoMessage() {}

func (x *MediaInfo) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[6]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use MediaInfo.ProtoReflect.Descriptor instead.
func (*MediaInfo) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{6}
}

func (x *MediaInfo) GetMediaId() string {
	if x != nil {
		return x.MediaId
	}
	return ""
}

func (x *MediaInfo) GetKind() MediaKind {
	if x != nil {
		return x.Kind
	}
	return MediaKind_MEDIA_KIND_UNSPECIFIED
}

func (x *MediaInfo) GetMimeType() string {
	if x != nil {
		return x.MimeType
	}
	return ""
}

func (x *MediaInfo) GetSize() int64 {
	if x != nil {
		return x.Size
	}
	return 0
}

func (x *MediaInfo) GetSha256() []byte {
	if x != nil {
		return x.Sha256
	}
	return nil
}

func (x *MediaInfo) GetWidth() uint32 {
	if x != nil {
		return x.Width
	}
	return 0
}

func (x *MediaInfo) GetHeight() uint32 {
	if x != nil {
		return x.Height
	}
	return 0
}

func (x *MediaInfo) GetDurationMs() uint32 {
	if x != nil {
		return x.DurationMs
	}
	return 0
}

func (x *MediaInfo) GetThumbWidth() uint32 {
	if x != nil {
		return x.ThumbWidth
	}
	return 0
}

func (x *MediaInfo) GetThumbHeight() uint32 {
	if x != nil {
		return x.ThumbHeight
	}
	return 0
}

func (x *MediaInfo) GetThumbSize() int64 {
	if x != nil {
		return x.ThumbSize
	}
	return 0
}

func (x *MediaInfo) GetStripped() []string {
	if x != nil {
		return x.Stripped
	}
	return nil
}

func (x *MediaInfo) GetExpiresUnixMs() int64 {
	if x != nil {
		return x.ExpiresUnixMs
	}
	return 0
}

type SendImageRequest struct {
	state    protoimpl.MessageState `protogen:"open.v1"`
	ToUserId uint64                 `protobuf:"varint,1,opt,name=to_user_id,json=toUserId,proto3" json:"to_user_id,omitempty"`
	// client_msg_id as in SendTextRequest: 1 to 64 bytes, the same on
	// retries.
	ClientMsgId string `protobuf:"bytes,2,opt,name=client_msg_id,json=clientMsgId,proto3" json:"client_msg_id,omitempty"`
	// media_id is a completed image upload of the caller's, or an image sent
	// to the caller (forwarding it stores nothing new).
	MediaId       string `protobuf:"bytes,3,opt,name=media_id,json=mediaId,proto3" json:"media_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *SendImageRequest) Reset() {
	*x = SendImageRequest{}
	mi := &file_im_media_proto_msgTypes[7]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *SendImageRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*SendImageRequest) ProtoMessage() {}

func (x *SendImageRequest) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[7]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use SendImageRequest.ProtoReflect.Descriptor instead.
func (*SendImageRequest) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{7}
}

func (x *SendImageRequest) GetToUserId() uint64 {
	if x != nil {
		return x.ToUserId
	}
	return 0
}

func (x *SendImageRequest) GetClientMsgId() string {
	if x != nil {
		return x.ClientMsgId
	}
	return ""
}

func (x *SendImageRequest) GetMediaId() string {
	if x != nil {
		return x.MediaId
	}
	return ""
}

type SendVideoRequest struct {
	state       protoimpl.MessageState `protogen:"open.v1"`
	ToUserId    uint64                 `protobuf:"varint,1,opt,name=to_user_id,json=toUserId,proto3" json:"to_user_id,omitempty"`
	ClientMsgId string                 `protobuf:"bytes,2,opt,name=client_msg_id,json=clientMsgId,proto3" json:"client_msg_id,omitempty"`
	// media_id is a completed video upload of the caller's, or a video sent
	// to the caller.
	MediaId string `protobuf:"bytes,3,opt,name=media_id,json=mediaId,proto3" json:"media_id,omitempty"`
	// cover_media_id optionally names an image, as media_id does, that
	// receivers show (its thumbnail) in place of the video until they play
	// it; the message names it in thumb_media_id.
	CoverMediaId  string `protobuf:"bytes,4,opt,name=cover_media_id,json=coverMediaId,proto3" json:"cover_media_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *SendVideoRequest) Reset() {
	*x = SendVideoRequest{}
	mi := &file_im_media_proto_msgTypes[8]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *SendVideoRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*SendVideoRequest) ProtoMessage() {}

func (x *SendVideoRequest) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[8]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use SendVideoRequest.ProtoReflect.Descriptor instead.
func (*SendVideoRequest) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{8}
}

func (x *SendVideoRequest) GetToUserId() uint64 {
	if x != nil {
		return x.ToUserId
	}
	return 0
}

func (x *SendVideoRequest) GetClientMsgId() string {
	if x != nil {
		return x.ClientMsgId
	}
	return ""
}

func (x *SendVideoRequest) GetMediaId() string {
	if x != nil {
		return x.MediaId
	}
	return ""
}

func (x *SendVideoRequest) GetCoverMediaId() string {
	if x != nil {
		return x.CoverMediaId
	}
	return ""
}

type DeleteMediaRequest struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	MediaId       string                 `protobuf:"bytes,1,opt,name=media_id,json=mediaId,proto3" json:"media_id,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *DeleteMediaRequest) Reset() {
	*x = DeleteMediaRequest{}
	mi := &file_im_media_proto_msgTypes[9]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *DeleteMediaRequest) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*DeleteMediaRequest) ProtoMessage() {}

func (x *DeleteMediaRequest) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[9]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use DeleteMediaRequest.ProtoReflect.Descriptor instead.
func (*DeleteMediaRequest) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{9}
}

func (x *DeleteMediaRequest) GetMediaId() string {
	if x != nil {
		return x.MediaId
	}
	return ""
}

type DeleteMediaReply struct {
	state protoimpl.MessageState `protogen:"open.v1"`
	// deleted is false when the media was already gone.
	Deleted       bool `protobuf:"varint,1,opt,name=deleted,proto3" json:"deleted,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *DeleteMediaReply) Reset() {
	*x = DeleteMediaReply{}
	mi := &file_im_media_proto_msgTypes[10]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *DeleteMediaReply) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*DeleteMediaReply) ProtoMessage() {}

func (x *DeleteMediaReply) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[10]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use DeleteMediaReply.ProtoReflect.Descriptor instead.
func (*DeleteMediaReply) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{10}
}

func (x *DeleteMediaReply) GetDeleted() bool {
	if x != nil {
		return x.Deleted
	}
	return false
}

// MediaRecord is how the sendmedia Logicsvr stores media in its object
// store (not part of the client API).
type MediaRecord struct {
	state       protoimpl.MessageState `protogen:"open.v1"`
	MediaId     string                 `protobuf:"bytes,1,opt,name=media_id,json=mediaId,proto3" json:"media_id,omitempty"`
	OwnerUserId uint64                 `protobuf:"varint,2,opt,name=owner_user_id,json=ownerUserId,proto3" json:"owner_user_id,omitempty"`
	Kind        MediaKind              `protobuf:"varint,3,opt,name=kind,proto3,enum=im.MediaKind" json:"kind,omitempty"`
	MimeType    string                 `protobuf:"bytes,4,opt,name=mime_type,json=mimeType,proto3" json:"mime_type,omitempty"`
	Size        int64                  `protobuf:"varint,5,opt,name=size,proto3" json:"size,omitempty"`
	Sha256      []byte                 `protobuf:"bytes,6,opt,name=sha256,proto3" json:"sha256,omitempty"`
	Width       uint32                 `protobuf:"varint,7,opt,name=width,proto3" json:"width,omitempty"`
	Height      uint32                 `protobuf:"varint,8,opt,name=height,proto3" json:"height,omitempty"`
	DurationMs  uint32                 `protobuf:"varint,9,opt,name=duration_ms,json=durationMs,proto3" json:"duration_ms,omitempty"`
	// thumb_sha256 names the thumbnail's content; empty without one.
	ThumbSha256   []byte   `protobuf:"bytes,10,opt,name=thumb_sha256,json=thumbSha256,proto3" json:"thumb_sha256,omitempty"`
	ThumbWidth    uint32   `protobuf:"varint,11,opt,name=thumb_width,json=thumbWidth,proto3" json:"thumb_width,omitempty"`
	ThumbHeight   uint32   `protobuf:"varint,12,opt,name=thumb_height,json=thumbHeight,proto3" json:"thumb_height,omitempty"`
	ThumbSize     int64    `protobuf:"varint,13,opt,name=thumb_size,json=thumbSize,proto3" json:"thumb_size,omitempty"`
	Stripped      []string `protobuf:"bytes,14,rep,name=stripped,proto3" json:"stripped,omitempty"`
	CreatedUnixMs int64    `protobuf:"varint,15,opt,name=created_unix_ms,json=createdUnixMs,proto3" json:"created_unix_ms,omitempty"`
	ExpiresUnixMs int64    `protobuf:"varint,16,opt,name=expires_unix_ms,json=expiresUnixMs,proto3" json:"expires_unix_ms,omitempty"`
	// original_sha256 and original_size are the upload's, before processing.
	OriginalSha256 []byte `protobuf:"bytes,17,opt,name=original_sha256,json=originalSha256,proto3" json:"original_sha256,omitempty"`
	OriginalSize   int64  `protobuf:"varint,18,opt,name=original_size,json=originalSize,proto3" json:"original_size,omitempty"`
	unknownFields  protoimpl.UnknownFields
	sizeCache      protoimpl.SizeCache
}

func (x *MediaRecord) Reset() {
	*x = MediaRecord{}
	mi := &file_im_media_proto_msgTypes[11]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *MediaRecord) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*MediaRecord) ProtoMessage() {}

func (x *MediaRecord) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[11]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use MediaRecord.ProtoReflect.Descriptor instead.
func (*MediaRecord) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{11}
}

func (x *MediaRecord) GetMediaId() string {
	if x != nil {
		return x.MediaId
	}
	return ""
}

func (x *MediaRecord) GetOwnerUserId() uint64 {
	if x != nil {
		return x.OwnerUserId
	}
	return 0
}

func (x *MediaRecord) GetKind() MediaKind {
	if x != nil {
		return x.Kind
	}
	return MediaKind_MEDIA_KIND_UNSPECIFIED
}

func (x *MediaRecord) GetMimeType() string {
	if x != nil {
		return x.MimeType
	}
	return ""
}

func (x *MediaRecord) GetSize() int64 {
	if x != nil {
		return x.Size
	}
	return 0
}

func (x *MediaRecord) GetSha256() []byte {
	if x != nil {
		return x.Sha256
	}
	return nil
}

func (x *MediaRecord) GetWidth() uint32 {
	if x != nil {
		return x.Width
	}
	return 0
}

func (x *MediaRecord) GetHeight() uint32 {
	if x != nil {
		return x.Height
	}
	return 0
}

func (x *MediaRecord) GetDurationMs() uint32 {
	if x != nil {
		return x.DurationMs
	}
	return 0
}

func (x *MediaRecord) GetThumbSha256() []byte {
	if x != nil {
		return x.ThumbSha256
	}
	return nil
}

func (x *MediaRecord) GetThumbWidth() uint32 {
	if x != nil {
		return x.ThumbWidth
	}
	return 0
}

func (x *MediaRecord) GetThumbHeight() uint32 {
	if x != nil {
		return x.ThumbHeight
	}
	return 0
}

func (x *MediaRecord) GetThumbSize() int64 {
	if x != nil {
		return x.ThumbSize
	}
	return 0
}

func (x *MediaRecord) GetStripped() []string {
	if x != nil {
		return x.Stripped
	}
	return nil
}

func (x *MediaRecord) GetCreatedUnixMs() int64 {
	if x != nil {
		return x.CreatedUnixMs
	}
	return 0
}

func (x *MediaRecord) GetExpiresUnixMs() int64 {
	if x != nil {
		return x.ExpiresUnixMs
	}
	return 0
}

func (x *MediaRecord) GetOriginalSha256() []byte {
	if x != nil {
		return x.OriginalSha256
	}
	return nil
}

func (x *MediaRecord) GetOriginalSize() int64 {
	if x != nil {
		return x.OriginalSize
	}
	return 0
}

// UploadRecord is how the sendmedia Logicsvr stores an upload in progress
// (not part of the client API).
type UploadRecord struct {
	state         protoimpl.MessageState `protogen:"open.v1"`
	UploadId      string                 `protobuf:"bytes,1,opt,name=upload_id,json=uploadId,proto3" json:"upload_id,omitempty"`
	OwnerUserId   uint64                 `protobuf:"varint,2,opt,name=owner_user_id,json=ownerUserId,proto3" json:"owner_user_id,omitempty"`
	MimeType      string                 `protobuf:"bytes,3,opt,name=mime_type,json=mimeType,proto3" json:"mime_type,omitempty"`
	Size          int64                  `protobuf:"varint,4,opt,name=size,proto3" json:"size,omitempty"`
	Sha256        []byte                 `protobuf:"bytes,5,opt,name=sha256,proto3" json:"sha256,omitempty"`
	ChunkSize     uint32                 `protobuf:"varint,6,opt,name=chunk_size,json=chunkSize,proto3" json:"chunk_size,omitempty"`
	CreatedUnixMs int64                  `protobuf:"varint,7,opt,name=created_unix_ms,json=createdUnixMs,proto3" json:"created_unix_ms,omitempty"`
	unknownFields protoimpl.UnknownFields
	sizeCache     protoimpl.SizeCache
}

func (x *UploadRecord) Reset() {
	*x = UploadRecord{}
	mi := &file_im_media_proto_msgTypes[12]
	ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
	ms.StoreMessageInfo(mi)
}

func (x *UploadRecord) String() string {
	return protoimpl.X.MessageStringOf(x)
}

func (*UploadRecord) ProtoMessage() {}

func (x *UploadRecord) ProtoReflect() protoreflect.Message {
	mi := &file_im_media_proto_msgTypes[12]
	if x != nil {
		ms := protoimpl.X.MessageStateOf(protoimpl.Pointer(x))
		if ms.LoadMessageInfo() == nil {
			ms.StoreMessageInfo(mi)
		}
		return ms
	}
	return mi.MessageOf(x)
}

// Deprecated: Use UploadRecord.ProtoReflect.Descriptor instead.
func (*UploadRecord) Descriptor() ([]byte, []int) {
	return file_im_media_proto_rawDescGZIP(), []int{12}
}

func (x *UploadRecord) GetUploadId() string {
	if x != nil {
		return x.UploadId
	}
	return ""
}

func (x *UploadRecord) GetOwnerUserId() uint64 {
	if x != nil {
		return x.OwnerUserId
	}
	return 0
}

func (x *UploadRecord) GetMimeType() string {
	if x != nil {
		return x.MimeType
	}
	return ""
}

func (x *UploadRecord) GetSize() int64 {
	if x != nil {
		return x.Size
	}
	return 0
}

func (x *UploadRecord) GetSha256() []byte {
	if x != nil {
		return x.Sha256
	}
	return nil
}

func (x *UploadRecord) GetChunkSize() uint32 {
	if x != nil {
		return x.ChunkSize
	}
	return 0
}

func (x *UploadRecord) GetCreatedUnixMs() int64 {
	if x != nil {
		return x.CreatedUnixMs
	}
	return 0
}

var File_im_media_proto protoreflect.FileDescriptor

const file_im_media_proto_rawDesc = "" +
	"\n" +
	"\x0eim/media.proto\x12\x02im\x1a\x14svrkit/options.proto\x1a\rim/link.proto\x1a\x10im/message.proto\"|\n" +
	"\x12StartUploadRequest\x12\x1b\n" +
	"\tmime_type\x18\x01 \x01(\tR\bmimeType\x12\x12\n" +
	"\x04size\x18\x02 \x01(\x03R\x04size\x12\x16\n" +
	"\x06sha256\x18\x03 \x01(\fR\x06sha256\x12\x1d\n" +
	"\n" +
	"chunk_size\x18\x04 \x01(\rR\tchunkSize\"\x8a\x02\n" +
	"\vUploadState\x12\x1b\n" +
	"\tupload_id\x18\x01 \x01(\tR\buploadId\x12\x1b\n" +
	"\tmime_type\x18\x02 \x01(\tR\bmimeType\x12\x12\n" +
	"\x04size\x18\x03 \x01(\x03R\x04size\x12\x1d\n" +
	"\n" +
	"chunk_size\x18\x04 \x01(\rR\tchunkSize\x12%\n" +
	"\x06stored\x18\x05 \x03(\v2\r.im.ByteRangeR\x06stored\x12!\n" +
	"\fstored_bytes\x18\x06 \x01(\x03R\vstoredBytes\x12&\n" +
	"\x0fexpires_unix_ms\x18\a \x01(\x03R\rexpiresUnixMs\x12\x1c\n" +
	"\tcompleted\x18\b \x01(\bR\tcompleted\";\n" +
	"\tByteRange\x12\x16\n" +
	"\x06offset\x18\x01 \x01(\x03R\x06offset\x12\x16\n" +
	"\x06length\x18\x02 \x01(\x03R\x06length\"]\n" +
	"\x12UploadChunkRequest\x12\x1b\n" +
	"\tupload_id\x18\x01 \x01(\tR\buploadId\x12\x16\n" +
	"\x06offset\x18\x02 \x01(\x03R\x06offset\x12\x12\n" +
	"\x04data\x18\x03 \x01(\fR\x04data\"/\n" +
	"\x10GetUploadRequest\x12\x1b\n" +
	"\tupload_id\x18\x01 \x01(\tR\buploadId\"4\n" +
	"\x15CompleteUploadRequest\x12\x1b\n" +
	"\tupload_id\x18\x01 \x01(\tR\buploadId\"\x88\x03\n" +
	"\tMediaInfo\x12\x19\n" +
	"\bmedia_id\x18\x01 \x01(\tR\amediaId\x12!\n" +
	"\x04kind\x18\x02 \x01(\x0e2\r.im.MediaKindR\x04kind\x12\x1b\n" +
	"\tmime_type\x18\x03 \x01(\tR\bmimeType\x12\x12\n" +
	"\x04size\x18\x04 \x01(\x03R\x04size\x12\x16\n" +
	"\x06sha256\x18\x05 \x01(\fR\x06sha256\x12\x14\n" +
	"\x05width\x18\x06 \x01(\rR\x05width\x12\x16\n" +
	"\x06height\x18\a \x01(\rR\x06height\x12\x1f\n" +
	"\vduration_ms\x18\b \x01(\rR\n" +
	"durationMs\x12\x1f\n" +
	"\vthumb_width\x18\t \x01(\rR\n" +
	"thumbWidth\x12!\n" +
	"\fthumb_height\x18\n" +
	" \x01(\rR\vthumbHeight\x12\x1d\n" +
	"\n" +
	"thumb_size\x18\v \x01(\x03R\tthumbSize\x12\x1a\n" +
	"\bstripped\x18\f \x03(\tR\bstripped\x12&\n" +
	"\x0fexpires_unix_ms\x18\r \x01(\x03R\rexpiresUnixMs\"o\n" +
	"\x10SendImageRequest\x12\x1c\n" +
	"\n" +
	"to_user_id\x18\x01 \x01(\x04R\btoUserId\x12\"\n" +
	"\rclient_msg_id\x18\x02 \x01(\tR\vclientMsgId\x12\x19\n" +
	"\bmedia_id\x18\x03 \x01(\tR\amediaId\"\x95\x01\n" +
	"\x10SendVideoRequest\x12\x1c\n" +
	"\n" +
	"to_user_id\x18\x01 \x01(\x04R\btoUserId\x12\"\n" +
	"\rclient_msg_id\x18\x02 \x01(\tR\vclientMsgId\x12\x19\n" +
	"\bmedia_id\x18\x03 \x01(\tR\amediaId\x12$\n" +
	"\x0ecover_media_id\x18\x04 \x01(\tR\fcoverMediaId\"/\n" +
	"\x12DeleteMediaRequest\x12\x19\n" +
	"\bmedia_id\x18\x01 \x01(\tR\amediaId\",\n" +
	"\x10DeleteMediaReply\x12\x18\n" +
	"\adeleted\x18\x01 \x01(\bR\adeleted\"\xc7\x04\n" +
	"\vMediaRecord\x12\x19\n" +
	"\bmedia_id\x18\x01 \x01(\tR\amediaId\x12\"\n" +
	"\rowner_user_id\x18\x02 \x01(\x04R\vownerUserId\x12!\n" +
	"\x04kind\x18\x03 \x01(\x0e2\r.im.MediaKindR\x04kind\x12\x1b\n" +
	"\tmime_type\x18\x04 \x01(\tR\bmimeType\x12\x12\n" +
	"\x04size\x18\x05 \x01(\x03R\x04size\x12\x16\n" +
	"\x06sha256\x18\x06 \x01(\fR\x06sha256\x12\x14\n" +
	"\x05width\x18\a \x01(\rR\x05width\x12\x16\n" +
	"\x06height\x18\b \x01(\rR\x06height\x12\x1f\n" +
	"\vduration_ms\x18\t \x01(\rR\n" +
	"durationMs\x12!\n" +
	"\fthumb_sha256\x18\n" +
	" \x01(\fR\vthumbSha256\x12\x1f\n" +
	"\vthumb_width\x18\v \x01(\rR\n" +
	"thumbWidth\x12!\n" +
	"\fthumb_height\x18\f \x01(\rR\vthumbHeight\x12\x1d\n" +
	"\n" +
	"thumb_size\x18\r \x01(\x03R\tthumbSize\x12\x1a\n" +
	"\bstripped\x18\x0e \x03(\tR\bstripped\x12&\n" +
	"\x0fcreated_unix_ms\x18\x0f \x01(\x03R\rcreatedUnixMs\x12&\n" +
	"\x0fexpires_unix_ms\x18\x10 \x01(\x03R\rexpiresUnixMs\x12'\n" +
	"\x0foriginal_sha256\x18\x11 \x01(\fR\x0eoriginalSha256\x12#\n" +
	"\roriginal_size\x18\x12 \x01(\x03R\foriginalSize\"\xdf\x01\n" +
	"\fUploadRecord\x12\x1b\n" +
	"\tupload_id\x18\x01 \x01(\tR\buploadId\x12\"\n" +
	"\rowner_user_id\x18\x02 \x01(\x04R\vownerUserId\x12\x1b\n" +
	"\tmime_type\x18\x03 \x01(\tR\bmimeType\x12\x12\n" +
	"\x04size\x18\x04 \x01(\x03R\x04size\x12\x16\n" +
	"\x06sha256\x18\x05 \x01(\fR\x06sha256\x12\x1d\n" +
	"\n" +
	"chunk_size\x18\x06 \x01(\rR\tchunkSize\x12&\n" +
	"\x0fcreated_unix_ms\x18\a \x01(\x03R\rcreatedUnixMs*\xbe\x02\n" +
	"\n" +
	"MediaLimit\x12\x1b\n" +
	"\x17MEDIA_LIMIT_UNSPECIFIED\x10\x00\x12\"\n" +
	"\x1bMEDIA_LIMIT_MAX_IMAGE_BYTES\x10\x80\x80\x80\x05\x12\"\n" +
	"\x1bMEDIA_LIMIT_MAX_VIDEO_BYTES\x10\x80\x80\x802\x12!\n" +
	"\x1bMEDIA_LIMIT_MIN_CHUNK_BYTES\x10\x80\x80\x04\x12\"\n" +
	"\x1bMEDIA_LIMIT_MAX_CHUNK_BYTES\x10\x80\x80\x80\x01\x12#\n" +
	"\x1cMEDIA_LIMIT_MAX_IMAGE_PIXELS\x10\x80\xe1\xeb\x17\x12 \n" +
	"\x1aMEDIA_LIMIT_MAX_IMAGE_SIDE\x10\x80\x80\x01\x12\x1b\n" +
	"\x16MEDIA_LIMIT_THUMB_SIDE\x10\xc0\x02\x12 \n" +
	"\x1cMEDIA_LIMIT_MAX_OPEN_UPLOADS\x10\x10*S\n" +
	"\tMediaKind\x12\x1a\n" +
	"\x16MEDIA_KIND_UNSPECIFIED\x10\x00\x12\x14\n" +
	"\x10MEDIA_KIND_IMAGE\x10\x01\x12\x14\n" +
	"\x10MEDIA_KIND_VIDEO\x10\x022\xbb\x05\n" +
	"\tSendMedia\x12]\n" +
	"\vStartUpload\x12\x16.im.StartUploadRequest\x1a\x0f.im.UploadState\"%\xca\xf3\x18!\b\x01\x12\x1b/cgi-bin/media/upload/start8@\x12c\n" +
	"\vUploadChunk\x12\x16.im.UploadChunkRequest\x1a\x0f.im.UploadState\"+\xca\xf3\x18'\b\x02\x12\x1b/cgi-bin/media/upload/chunk\x18\xb0\xea\x01 \x018 \x12W\n" +
	"\tGetUpload\x12\x14.im.GetUploadRequest\x1a\x0f.im.UploadState\"#\xca\xf3\x18\x1f\b\x03\x12\x19/cgi-bin/media/upload/get \x01\x12j\n" +
	"\x0eCompleteUpload\x12\x19.im.CompleteUploadRequest\x1a\r.im.MediaInfo\".\xca\xf3\x18*\b\x04\x12\x1e/cgi-bin/media/upload/complete\x18\xe0\xd4\x03 \x018\b\x12O\n" +
	"\tSendImage\x12\x14.im.SendImageRequest\x1a\r.im.SendReply\"\x1d\xca\xf3\x18\x19\b\x05\x12\x13/cgi-bin/send/image \x01\x12O\n" +
	"\tSendVideo\x12\x14.im.SendVideoRequest\x1a\r.im.SendReply\"\x1d\xca\xf3\x18\x19\b\x06\x12\x13/cgi-bin/send/video \x01\x12\\\n" +
	"\vDeleteMedia\x12\x16.im.DeleteMediaRequest\x1a\x14.im.DeleteMediaReply\"\x1f\xca\xf3\x18\x1b\b\a\x12\x15/cgi-bin/media/delete \x01\x1a%\xd2\xf3\x18\x1a\n" +
	"\tsendmedia\x10\x90N \x80\x02*\agateway\x8a\xb2\x19\x03\b\xf4\x03B)Z'github.com/svrkit/svrkit/examples/im;imb\x06proto3"

var (
	file_im_media_proto_rawDescOnce sync.Once
	file_im_media_proto_rawDescData []byte
)

func file_im_media_proto_rawDescGZIP() []byte {
	file_im_media_proto_rawDescOnce.Do(func() {
		file_im_media_proto_rawDescData = protoimpl.X.CompressGZIP(unsafe.Slice(unsafe.StringData(file_im_media_proto_rawDesc), len(file_im_media_proto_rawDesc)))
	})
	return file_im_media_proto_rawDescData
}

var file_im_media_proto_enumTypes = make([]protoimpl.EnumInfo, 2)
var file_im_media_proto_msgTypes = make([]protoimpl.MessageInfo, 13)
var file_im_media_proto_goTypes = []any{
	(MediaLimit)(0),               // 0: im.MediaLimit
	(MediaKind)(0),                // 1: im.MediaKind
	(*StartUploadRequest)(nil),    // 2: im.StartUploadRequest
	(*UploadState)(nil),           // 3: im.UploadState
	(*ByteRange)(nil),             // 4: im.ByteRange
	(*UploadChunkRequest)(nil),    // 5: im.UploadChunkRequest
	(*GetUploadRequest)(nil),      // 6: im.GetUploadRequest
	(*CompleteUploadRequest)(nil), // 7: im.CompleteUploadRequest
	(*MediaInfo)(nil),             // 8: im.MediaInfo
	(*SendImageRequest)(nil),      // 9: im.SendImageRequest
	(*SendVideoRequest)(nil),      // 10: im.SendVideoRequest
	(*DeleteMediaRequest)(nil),    // 11: im.DeleteMediaRequest
	(*DeleteMediaReply)(nil),      // 12: im.DeleteMediaReply
	(*MediaRecord)(nil),           // 13: im.MediaRecord
	(*UploadRecord)(nil),          // 14: im.UploadRecord
	(*SendReply)(nil),             // 15: im.SendReply
}
var file_im_media_proto_depIdxs = []int32{
	4,  // 0: im.UploadState.stored:type_name -> im.ByteRange
	1,  // 1: im.MediaInfo.kind:type_name -> im.MediaKind
	1,  // 2: im.MediaRecord.kind:type_name -> im.MediaKind
	2,  // 3: im.SendMedia.StartUpload:input_type -> im.StartUploadRequest
	5,  // 4: im.SendMedia.UploadChunk:input_type -> im.UploadChunkRequest
	6,  // 5: im.SendMedia.GetUpload:input_type -> im.GetUploadRequest
	7,  // 6: im.SendMedia.CompleteUpload:input_type -> im.CompleteUploadRequest
	9,  // 7: im.SendMedia.SendImage:input_type -> im.SendImageRequest
	10, // 8: im.SendMedia.SendVideo:input_type -> im.SendVideoRequest
	11, // 9: im.SendMedia.DeleteMedia:input_type -> im.DeleteMediaRequest
	3,  // 10: im.SendMedia.StartUpload:output_type -> im.UploadState
	3,  // 11: im.SendMedia.UploadChunk:output_type -> im.UploadState
	3,  // 12: im.SendMedia.GetUpload:output_type -> im.UploadState
	8,  // 13: im.SendMedia.CompleteUpload:output_type -> im.MediaInfo
	15, // 14: im.SendMedia.SendImage:output_type -> im.SendReply
	15, // 15: im.SendMedia.SendVideo:output_type -> im.SendReply
	12, // 16: im.SendMedia.DeleteMedia:output_type -> im.DeleteMediaReply
	10, // [10:17] is the sub-list for method output_type
	3,  // [3:10] is the sub-list for method input_type
	3,  // [3:3] is the sub-list for extension type_name
	3,  // [3:3] is the sub-list for extension extendee
	0,  // [0:3] is the sub-list for field type_name
}

func init() { file_im_media_proto_init() }
func file_im_media_proto_init() {
	if File_im_media_proto != nil {
		return
	}
	file_im_link_proto_init()
	file_im_message_proto_init()
	type x struct{}
	out := protoimpl.TypeBuilder{
		File: protoimpl.DescBuilder{
			GoPackagePath: reflect.TypeOf(x{}).PkgPath(),
			RawDescriptor: unsafe.Slice(unsafe.StringData(file_im_media_proto_rawDesc), len(file_im_media_proto_rawDesc)),
			NumEnums:      2,
			NumMessages:   13,
			NumExtensions: 0,
			NumServices:   1,
		},
		GoTypes:           file_im_media_proto_goTypes,
		DependencyIndexes: file_im_media_proto_depIdxs,
		EnumInfos:         file_im_media_proto_enumTypes,
		MessageInfos:      file_im_media_proto_msgTypes,
	}.Build()
	File_im_media_proto = out.File
	file_im_media_proto_goTypes = nil
	file_im_media_proto_depIdxs = nil
}
